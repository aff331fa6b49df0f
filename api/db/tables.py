"""Tables, declared once with SQLAlchemy 2 (Alembic migrations in ``api/db/migrations`` create
them). Dates and times that enter the audit hash are kept as ISO text, so that every database
gives back exactly what was hashed."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ApiClient(Base):
    """A bank, regulator or operator calling the service; the key is stored only as a hash."""

    __tablename__ = "api_clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(12))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[str] = mapped_column(String(32))


class Authorization(Base):
    """An enterprise's authorisation (授权书) for one bank to query its credit information."""

    __tablename__ = "authorizations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(200))
    data_scope: Mapped[str] = mapped_column(String(400))
    valid_from: Mapped[object] = mapped_column(Date)
    valid_until: Mapped[object] = mapped_column(Date)
    revoked_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    template_version: Mapped[str] = mapped_column(String(40))
    document_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))


class PublishedProfile(Base):
    """The profile row the service decides on: the newest published for each enterprise."""

    __tablename__ = "published_profiles"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    as_of: Mapped[object] = mapped_column(Date)
    feature_set_version: Mapped[str] = mapped_column(String(12))
    features: Mapped[str] = mapped_column(Text)  # JSON: feature → value (null when missing)
    published_at: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: feature → records (features.profile.evidence)
    disputes: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the enterprise's open objections (api.objections.workflow)


class Decision(Base):
    """One decision, append-only, chained: ``hash`` covers the row and the previous row's hash."""

    __tablename__ = "decisions"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    uscc: Mapped[str] = mapped_column(String(18))
    authorization_id: Mapped[str] = mapped_column(String(36))
    model_version: Mapped[str] = mapped_column(String(40))
    policy_version: Mapped[str] = mapped_column(String(40))
    profile_as_of: Mapped[str] = mapped_column(String(10))
    feature_set_version: Mapped[str] = mapped_column(String(12))
    product: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pd: Mapped[float] = mapped_column(Float(precision=53))
    score: Mapped[float] = mapped_column(Float(precision=53))
    grade: Mapped[str] = mapped_column(String(1))
    decision: Mapped[str] = mapped_column(String(10))
    limit_yuan: Mapped[int] = mapped_column(BigInteger)
    reasons: Mapped[str] = mapped_column(Text)  # JSON, as hashed
    created_at: Mapped[str] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # the row's format in the chain (api.trust.audit): 1 before migration 0010, 2 since
    chain_format: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    name: Mapped[str | None] = mapped_column(Text, nullable=True)  # the enterprise's name the answer showed
    answer_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)  # format 2: the answer sent, hashed

    __table_args__ = (Index("ix_decisions_uscc", "uscc"), Index("ix_decisions_client", "client_id"),
                      Index("ix_decisions_created", "created_at"))


class SourceDelivery(Base):
    """A source's latest delivery (the newest date the platform learned of one of its records) as
    the profiles published for ``as_of`` see it."""

    __tablename__ = "source_deliveries"
    as_of: Mapped[object] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivered: Mapped[object | None] = mapped_column(Date, nullable=True)
    published_at: Mapped[str] = mapped_column(String(32))


class Review(Base):
    """A bank's human review of a decision it was referred: one per decision, by the bank that asked."""

    __tablename__ = "reviews"
    request_id: Mapped[str] = mapped_column(ForeignKey("decisions.request_id"), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    outcome: Mapped[str] = mapped_column(String(10))
    limit_yuan: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_at: Mapped[str] = mapped_column(String(32))


class AuditHead(Base):
    """The end of a chain, locked by each append: row 1 the decisions', row 2 the workflow events'."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class SignedCheckpoint(Base):
    """A chain's own record of the largest checkpoint signed over it (row 1: the decisions', row 2:
    the workflow events'): what the checkpoints file must still hold (:func:`api.trust.audit.verify`)."""

    __tablename__ = "signed_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ChainIdentity(Base):
    """This database's identity (one row, made by its migration): the origin its chains' checkpoints
    name (:func:`api.trust.audit.origin`), so another database's checkpoints are refused by name."""

    __tablename__ = "chain_identity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[str] = mapped_column(String(36))


class Objection(Base):
    """An objection (异议) to one lake record or one profile feature of one enterprise, or a credit
    repair notice for one record, and how it was settled. ``open_key`` is set only while it is open:
    its uniqueness is what keeps two open objections to the same thing from existing, whoever files them."""

    __tablename__ = "objections"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # objection | repair
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    source: Mapped[str | None] = mapped_column(String(40), nullable=True)
    record_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the natural key, normalised
    key_hash: Mapped[str | None] = mapped_column(String(20), nullable=True)  # the lake's key hash (decimal)
    feature: Mapped[str | None] = mapped_column(String(60), nullable=True)
    features: Mapped[str] = mapped_column(Text)  # JSON: the profile features that rest on the disputed thing
    department: Mapped[str] = mapped_column(String(200))
    grounds: Mapped[str] = mapped_column(Text)
    attachments: Mapped[str] = mapped_column(Text)  # JSON: SHA-256 of each attachment
    filed_by: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    authorization_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    filed_at: Mapped[str] = mapped_column(String(32))
    filed_day: Mapped[object] = mapped_column(Date)
    due_day: Mapped[object] = mapped_column(Date)
    # counted on weekdays alone: a day counted was in a year China's calendar did not know yet
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10))  # open | upheld | corrected | removed | repaired
    open_key: Mapped[str | None] = mapped_column(String(120), nullable=True, unique=True)
    settled_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    settled_day: Mapped[object | None] = mapped_column(Date, nullable=True)
    settled_by: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"), nullable=True)
    settlement: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: note, changes, repair date, lake run
    republished_at: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index("ix_objections_open", "status", "department", "due_day"),)


class WorkflowEvent(Base):
    """A step of a workflow (an objection filed, settled, republished; a bank's review recorded), in a chain of its own built
    like the decisions' (``hash`` covers the row and the previous row's hash; head: audit_head row 2)."""

    __tablename__ = "workflow_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(36), index=True)
    uscc: Mapped[str] = mapped_column(String(18))
    client_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON, as hashed
    created_at: Mapped[str] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ProfileChange(Base):
    """An enterprise's published profile changed by an objection's correction, removal or repair:
    what the banks' change feeds list (``id`` is the feed's cursor)."""

    __tablename__ = "profile_changes"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    objection_id: Mapped[str] = mapped_column(String(36))
    cause: Mapped[str] = mapped_column(String(10))  # corrected | removed | repaired
    as_of: Mapped[object] = mapped_column(Date)
    changed_at: Mapped[str] = mapped_column(String(32))

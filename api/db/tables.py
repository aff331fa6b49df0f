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
    """The end of the decision chain: one row, locked by each append."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))

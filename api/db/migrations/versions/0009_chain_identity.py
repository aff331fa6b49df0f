"""Every chain anchored, and named: the database gets an identity its checkpoints' origin names
(so another database's checkpoints are refused by name); the workflow events' chain gets its own
record of the largest checkpoint signed over it (row 2, as in audit_head); and the banks' reviews
recorded so far enter that chain as events, as every review from now on does when it is recorded.

The events are hashed here as ``api.trust.audit.append_event`` hashes them (that format is the
chain's, fixed: ``sha256(prev_hash + "\\n" + canonical JSON of the event)``), written out rather
than imported, so that this migration keeps meaning what it meant when it ran.

Revision ID: 0009
Revises: 0008
"""
import datetime as dt
import hashlib
import json
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

EVENT_HASHED = ("seq", "kind", "subject", "uscc", "client_id", "detail", "created_at")
REVIEW_FIELDS = ("request_id", "client_id", "outcome", "limit_yuan", "reviewer", "note", "reviewed_at")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def upgrade() -> None:
    identity = op.create_table("chain_identity", sa.Column("id", sa.Integer, primary_key=True),
                               sa.Column("database_id", sa.String(36), nullable=False))
    op.bulk_insert(identity, [{"id": 1, "database_id": str(uuid.uuid4())}])
    op.execute(sa.text("INSERT INTO signed_checkpoints (id, size) VALUES (2, 0)"))
    connection = op.get_bind()
    reviews = connection.execute(sa.text(
        "SELECT r.request_id, r.client_id, r.outcome, r.limit_yuan, r.reviewer, r.note, r.reviewed_at, d.uscc "
        "FROM reviews r JOIN decisions d ON d.request_id = r.request_id ORDER BY r.reviewed_at, r.request_id")).all()
    if not reviews:
        return
    seq, previous = connection.execute(sa.text("SELECT last_seq, last_hash FROM audit_head WHERE id = 2")).one()
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    insert = sa.text("INSERT INTO workflow_events (seq, kind, subject, uscc, client_id, detail, created_at, prev_hash, "
                     "hash) VALUES (:seq, :kind, :subject, :uscc, :client_id, :detail, :created_at, :prev_hash, :hash)")
    for review in reviews:
        seq += 1
        fields = dict(zip(REVIEW_FIELDS, review[:7]))
        row = {"seq": seq, "kind": "review.recorded", "subject": fields["request_id"], "uscc": review.uscc,
               "client_id": fields["client_id"], "detail": _canonical(fields), "created_at": created}
        digest = hashlib.sha256(f"{previous}\n{_canonical({k: row[k] for k in EVENT_HASHED})}".encode("utf-8")).hexdigest()
        connection.execute(insert, {**row, "prev_hash": previous, "hash": digest})
        previous = digest
    connection.execute(sa.text("UPDATE audit_head SET last_seq = :seq, last_hash = :hash WHERE id = 2"),
                       {"seq": seq, "hash": previous})


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM signed_checkpoints WHERE id = 2"))
    op.drop_table("chain_identity")

"""Initial schema: API clients, authorisations, published profiles, the decision chain.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_prefix", sa.String(12), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "authorizations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("bank_id", sa.Integer, sa.ForeignKey("api_clients.id"), nullable=False, index=True),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("data_scope", sa.String(400), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=False),
        sa.Column("revoked_at", sa.String(32)),
        sa.Column("template_version", sa.String(40), nullable=False),
        sa.Column("document_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "published_profiles",
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("feature_set_version", sa.String(12), nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("published_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("request_id", sa.String(36), nullable=False, unique=True),
        sa.Column("client_id", sa.Integer, sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("authorization_id", sa.String(36), nullable=False),
        sa.Column("model_version", sa.String(40), nullable=False),
        sa.Column("policy_version", sa.String(40), nullable=False),
        sa.Column("profile_as_of", sa.String(10), nullable=False),
        sa.Column("feature_set_version", sa.String(12), nullable=False),
        sa.Column("product", sa.String(100)),
        sa.Column("requested_amount", sa.BigInteger),
        sa.Column("pd", sa.Float(precision=53), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("grade", sa.String(1), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("limit_yuan", sa.BigInteger, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_decisions_uscc", "decisions", ["uscc"])
    op.create_index("ix_decisions_client", "decisions", ["client_id"])
    op.create_index("ix_decisions_created", "decisions", ["created_at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS}])


def downgrade() -> None:
    for table in ("audit_head", "decisions", "published_profiles", "authorizations", "api_clients"):
        op.drop_table(table)

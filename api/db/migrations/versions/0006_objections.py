"""Objections and credit repair as a workflow: the objections, their events' chain, the profile
changes banks hear of, and each published profile's open disputes.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("published_profiles", sa.Column("disputes", sa.Text))
    op.create_table(
        "objections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("source", sa.String(40)),
        sa.Column("record_key", sa.Text),
        sa.Column("key_hash", sa.String(20)),
        sa.Column("feature", sa.String(60)),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("grounds", sa.Text, nullable=False),
        sa.Column("attachments", sa.Text, nullable=False),
        sa.Column("filed_by", sa.Integer, sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("authorization_id", sa.String(36)),
        sa.Column("filed_at", sa.String(32), nullable=False),
        sa.Column("filed_day", sa.Date, nullable=False),
        sa.Column("due_day", sa.Date, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("open_key", sa.String(120), unique=True),
        sa.Column("settled_at", sa.String(32)),
        sa.Column("settled_day", sa.Date),
        sa.Column("settled_by", sa.Integer, sa.ForeignKey("api_clients.id")),
        sa.Column("settlement", sa.Text),
        sa.Column("republished_at", sa.String(32)),
    )
    op.create_index("ix_objections_open", "objections", ["status", "department", "due_day"])
    op.create_table(
        "workflow_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(36), nullable=False, index=True),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("client_id", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "profile_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("objection_id", sa.String(36), nullable=False),
        sa.Column("cause", sa.String(10), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("changed_at", sa.String(32), nullable=False),
    )
    op.execute("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (2, 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    op.execute("DELETE FROM audit_head WHERE id = 2")
    op.drop_table("profile_changes")
    op.drop_table("workflow_events")
    op.drop_index("ix_objections_open", "objections")
    op.drop_table("objections")
    op.drop_column("published_profiles", "disputes")

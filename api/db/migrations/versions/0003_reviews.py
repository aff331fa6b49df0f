"""A bank's human review of a referred decision: the outcome its credit officer recorded.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("request_id", sa.String(36), sa.ForeignKey("decisions.request_id"), primary_key=True),
        sa.Column("client_id", sa.Integer, sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("limit_yuan", sa.BigInteger),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("reviewed_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reviews")

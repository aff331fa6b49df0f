"""Lean receipts: the decisions' chain gets a second row format. A row of format 2 hashes two
digests and its place instead of its fields (``api.trust.audit``): the digest of the stored row
(which now keeps the enterprise's name the answer showed) and the digest of the answer the bank was
sent. A receipt then carries one digest, not the whole decision, and covers every field the answer
shows, the name included. The rows already written stay of format 1, hashed as they were, and
their receipts verify as before.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as table:
        table.add_column(sa.Column("chain_format", sa.Integer, nullable=False, server_default="1"))
        table.add_column(sa.Column("name", sa.Text, nullable=True))
        table.add_column(sa.Column("answer_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as table:
        table.drop_column("answer_digest")
        table.drop_column("name")
        table.drop_column("chain_format")

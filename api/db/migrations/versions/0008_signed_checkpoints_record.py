"""The chain's own record of the newest checkpoint signed over it: the size, head and time of the
largest one a worker signed and appended to the checkpoints file. Verify holds the file against
it, so that a checkpoints file emptied or cut short is named for what it is instead of vouching
for fewer rows without a word.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "signed_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),  # 1: the decisions' chain
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("head", sa.String(64), nullable=True),
        sa.Column("signed_at", sa.String(40), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
    )
    op.bulk_insert(table, [{"id": 1, "size": 0, "head": None, "signed_at": None, "key_id": None}])


def downgrade() -> None:
    op.drop_table("signed_checkpoints")

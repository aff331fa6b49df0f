"""Each source's latest delivery as the published profiles of a day see it (features.lake.Lake.deliveries).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_deliveries",
        sa.Column("as_of", sa.Date, primary_key=True),
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("delivered", sa.Date),
        sa.Column("published_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_deliveries")

"""An objection's due day may be provisional: counted on weekdays alone because a day it spans is
in a year whose holiday notice China's calendar does not hold yet (filings from late December).
A filing is never refused for that; the day is recomputed once the notice is known.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objections") as batch:
        batch.add_column(sa.Column("due_provisional", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("objections") as batch:
        batch.drop_column("due_provisional")

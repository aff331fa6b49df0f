"""PostgreSQL keeps each decision's reasons out of line without compressing them.

A decision's reasons (with its computation and feature vector, about 5 KB of JSON) pass
PostgreSQL's 2 KB threshold, and its default storage compresses them on every insert: CPU that
the database server takes from the same machine's service workers, for text written once and read
rarely. EXTERNAL storage keeps them out of line as they are. SQLite has no such setting.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE decisions ALTER COLUMN reasons SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE decisions ALTER COLUMN reasons SET STORAGE EXTENDED")

"""PostgreSQL keeps each decision's reasons in its row, uncompressed.

A decision's reasons (with its computation and feature vector, about 4 KB of JSON) pass
PostgreSQL's 2 KB threshold, and its default storage compresses them, or moves them to the TOAST
table, on every insert: CPU that the database server takes from the same machine's service
workers, for text written once and read rarely. EXTERNAL storage never compresses them, and a
tuple target of a whole page keeps rows up to 8 KB in the table itself (longer ones still go out
of line). SQLite has no such setting.

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
        op.execute("ALTER TABLE decisions SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE decisions RESET (toast_tuple_target)")
        op.execute("ALTER TABLE decisions ALTER COLUMN reasons SET STORAGE EXTENDED")

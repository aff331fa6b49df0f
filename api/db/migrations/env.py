"""Alembic environment: the URL comes from the caller (``api.db.engine.upgrade``)."""

from alembic import context
from sqlalchemy import create_engine, pool

from api.db.tables import Base

url = context.config.attributes["url"]
connectable = create_engine(url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()

"""Run the revisions on the connection `nightshift.stores.warehouse` passes in `config.attributes`; one transaction each."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=context.config.attributes["version_table"],
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()

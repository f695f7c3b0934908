"""The warehouse's schema history as Alembic revisions, run in code by `nightshift.stores.warehouse.migrate`.

There is no alembic.ini: `warehouse.alembic_config` points Alembic at this folder, `env.py` runs the revisions in
`versions/` on the connection it is handed, and the applied version lives in the `nightshift_schema_version` table.
"""

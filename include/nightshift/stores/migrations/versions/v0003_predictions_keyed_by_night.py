"""Predictions keyed by model, night, entity and alias; on Postgres, one partition per model and night.

- The natural key becomes the primary key, replacing both the key on `prediction_id` and `ux_predictions_night_entity`
  (a prediction id is a hash of model, night, alias and entity, so it was unique whenever the natural key was): one
  index to build per loaded night instead of two.
- Postgres: `predictions` becomes a table partitioned by RANGE (model, dt). Each (model, night) is a partition named
  by `warehouse.night_partition` in the schema `warehouse.partition_schema` names (`<schema>_predictions`), so
  `load_predictions` can build a night apart and swap it in whole. Pruning finds a night, so the key is ordered
  (entity_id, alias, model, dt), and model, entity_id and alias compare bytewise (COLLATE "C"): a night's key sorts
  about twice as fast, and an entity's predictions are found by index in every night. Existing rows move into their
  nights.
- SQLite: the table is rebuilt with the key (model, dt, entity_id, alias); its rows are copied over.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from nightshift.stores.warehouse import night_partition, partition_schema

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

COLUMNS = "prediction_id, model, dt, entity_id, score, model_version, alias, run_id"


def columns(collation: str | None = None) -> list[sa.Column]:
    return [
        sa.Column("prediction_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64, collation=collation), nullable=False),
        sa.Column("dt", sa.Date, nullable=False),
        sa.Column("entity_id", sa.String(128, collation=collation), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(32, collation=collation), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        partition()
    else:
        key = sa.PrimaryKeyConstraint("model", "dt", "entity_id", "alias", name="predictions_pkey")
        op.create_table("predictions_0003", *columns(), key)
        op.execute(f"INSERT INTO predictions_0003 ({COLUMNS}) SELECT {COLUMNS} FROM predictions")
        op.drop_table("predictions")
        op.rename_table("predictions_0003", "predictions")


def partition() -> None:
    bind = op.get_bind()
    quote = bind.dialect.identifier_preparer.quote_identifier
    schema = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass('predictions')"
    ).scalar_one()
    nights = quote(partition_schema(schema))
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {nights}")
    op.execute("ALTER TABLE predictions RENAME TO predictions_0002")
    op.execute("ALTER TABLE predictions_0002 DROP CONSTRAINT predictions_pkey")
    key = sa.PrimaryKeyConstraint("entity_id", "alias", "model", "dt", name="predictions_pkey")
    op.create_table("predictions", *columns("C"), key, postgresql_partition_by="RANGE (model, dt)")
    found = bind.exec_driver_sql("SELECT DISTINCT model, dt FROM predictions_0002 ORDER BY model, dt").all()
    for model, day in found:
        table = f"{nights}.{quote(night_partition(model, day))}"
        bounds = {"model": model, "day": day, "next": day + dt.timedelta(days=1)}
        bind.exec_driver_sql(
            f"CREATE TABLE {table} PARTITION OF predictions"
            " FOR VALUES FROM (%(model)s, %(day)s) TO (%(model)s, %(next)s)",
            bounds,
        )
        bind.exec_driver_sql(
            f"ALTER TABLE {table} ADD CONSTRAINT night CHECK (model = %(model)s AND dt = %(day)s)", bounds
        )
    op.execute(f"INSERT INTO predictions ({COLUMNS}) SELECT {COLUMNS} FROM predictions_0002")
    op.drop_table("predictions_0002")

"""What people query and trend: predictions, validation runs, drift, retrain requests, the promotion ledger.

SQLite on the embedded default, Postgres in production: the same SQLAlchemy Core tables. The schema is versioned
by the Alembic revisions in `nightshift/stores/migrations`; `connect` upgrades it to the newest version (a no-op when it
is current). Every write for a night replaces that night's rows in one transaction, so reruns never duplicate; the
validation, drift and retrain-decision writers also append the run's row to `night_runs` in that transaction, so the
history of a rerun night keeps what every run found. A database failure is a WarehouseError naming the warehouse, the
step and whether anything was committed.

Predictions are the bulk: `load_predictions` takes a night's frames (a multiclass model's also hold CLASS_COLUMNS).
On Postgres, `predictions` is partitioned by (model, dt); a night streams through binary COPY into a new table, gets
its primary key once loaded, and is swapped in as the night's partition in one short step (see `load_predictions`).

Import this package (`from nightshift.stores import warehouse`); its modules are: `tables`, `database` (engines,
connections, errors), `schema` (migrations and their lock), `rows` (any table's rows), `prediction_frames` (checking
frames), `binary_copy` (the COPY encoder and its thread), `partitions` (Postgres night partitions), `prediction_loads`,
`prediction_reads` (a night's rows, a multiclass model's class shares), `nights` (validation, drift, decisions,
`night_runs`), `performance` (live performance and data quality per night), `promotions` (the ledger), `unscored` (the scoring backlog) and `alerts`
(the alerts delivered).
The loader's tuning constants (LOAD_SLICE_ROWS, COPY_BATCH_ROWS, INDEX_BUILD_MEMORY, SWAP_LOCK_TIMEOUT_MS,
SWAP_WAIT_SECONDS) are read from their own modules and are not re-exported here.
"""

from __future__ import annotations

from nightshift.stores.warehouse.alerts import alerts_sent_rows, delivered, record_alert
from nightshift.stores.warehouse.database import WarehouseError, open_engine
from nightshift.stores.warehouse.nights import (
    append_night_run,
    drift_history,
    last_requested,
    night_runs,
    record_drift,
    record_retrain_decision,
    record_validation,
)
from nightshift.stores.warehouse.partitions import (
    PARTITION_SCHEMA_SUFFIX,
    empty_night,
    night_partition,
    partition_schema,
)
from nightshift.stores.warehouse.performance import (
    night_performance_metrics,
    performance_history,
    record_data_quality,
    record_performance,
)
from nightshift.stores.warehouse.prediction_frames import CLASS_COLUMNS, PREDICTION_COLUMNS, BadPredictions
from nightshift.stores.warehouse.prediction_loads import load_predictions, replace_predictions
from nightshift.stores.warehouse.prediction_reads import class_shares, night_predictions
from nightshift.stores.warehouse.promotions import append_ledger, ledger
from nightshift.stores.warehouse.rows import count_rows, fetch_all
from nightshift.stores.warehouse.schema import (
    MIGRATIONS_DIR,
    VERSION_TABLE,
    alembic_config,
    connect,
    head_version,
    migrate,
    migrate_command,
    schema_version,
)
from nightshift.stores.warehouse.tables import (
    ESTIMATED,
    POSTGRES_KEY,
    REALIZED,
    SCORED,
    STAGES,
    UNSCORED,
    alerts_sent,
    data_quality,
    drift_metrics,
    drift_nights,
    metadata,
    night_runs_table,
    performance_metrics,
    performance_nights,
    predictions,
    promotion_ledger,
    retrain_decisions,
    scoring_backlog,
    validation_runs,
)
from nightshift.stores.warehouse.unscored import backlog, record_unscored, resolve_unscored

__all__ = [
    "CLASS_COLUMNS",
    "ESTIMATED",
    "MIGRATIONS_DIR",
    "PARTITION_SCHEMA_SUFFIX",
    "POSTGRES_KEY",
    "PREDICTION_COLUMNS",
    "REALIZED",
    "SCORED",
    "STAGES",
    "UNSCORED",
    "VERSION_TABLE",
    "BadPredictions",
    "WarehouseError",
    "alembic_config",
    "alerts_sent",
    "alerts_sent_rows",
    "append_ledger",
    "append_night_run",
    "backlog",
    "class_shares",
    "connect",
    "count_rows",
    "data_quality",
    "delivered",
    "drift_history",
    "drift_metrics",
    "drift_nights",
    "empty_night",
    "fetch_all",
    "head_version",
    "last_requested",
    "ledger",
    "load_predictions",
    "metadata",
    "migrate",
    "migrate_command",
    "night_partition",
    "night_performance_metrics",
    "night_predictions",
    "night_runs",
    "night_runs_table",
    "open_engine",
    "partition_schema",
    "performance_history",
    "performance_metrics",
    "performance_nights",
    "predictions",
    "promotion_ledger",
    "record_alert",
    "record_data_quality",
    "record_drift",
    "record_performance",
    "record_retrain_decision",
    "record_unscored",
    "record_validation",
    "replace_predictions",
    "resolve_unscored",
    "retrain_decisions",
    "schema_version",
    "scoring_backlog",
    "validation_runs",
]

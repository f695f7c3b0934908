"""The warehouse's tables in SQLAlchemy Core, the same on SQLite and Postgres; the Alembic revisions in
`nightshift/stores/migrations` create them (`schema.connect` upgrades a warehouse to the newest)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()


def _key_text(length: int) -> sa.types.TypeEngine[str]:
    """A key column's type: on Postgres it compares bytewise (COLLATE "C"), so a night's key sorts fast in any locale."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _json_object() -> sa.types.TypeEngine[Any]:
    """A JSON column: JSONB on Postgres, JSON text elsewhere; read back as Python objects, None stored as SQL NULL."""
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(64), nullable=False),
    sa.Column("model", _key_text(64), nullable=False),
    sa.Column("dt", sa.Date, nullable=False),
    sa.Column("entity_id", _key_text(128), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("alias", _key_text(32), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("predicted_label", sa.String(200)),
    sa.Column("class_probabilities", _json_object()),
    sa.PrimaryKeyConstraint("model", "dt", "entity_id", "alias", name="predictions_pkey"),
    postgresql_partition_by="RANGE (model, dt)",
)
"""One row per model, night, entity and alias.

On Postgres each (model, night) is a partition of its own, and the key's columns are ordered POSTGRES_KEY: pruning
already finds a night, so its index leads with the entity (it sorts twice as fast when a night's key is built, and
serves an entity's predictions across nights). SQLite keeps model and dt first, for its night deletes.

`score` is what every model kind predicts (binary: the positive class's probability; regression: the value;
multiclass: the predicted class's probability). Multiclass rows also hold `predicted_label` and
`class_probabilities` (class name -> probability, a JSON object); other kinds leave both NULL (migration 0006).
"""
POSTGRES_KEY = ("entity_id", "alias", "model", "dt")


validation_runs = sa.Table(
    "validation_runs",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("accepted_rows", sa.Integer, nullable=False),
    sa.Column("quarantined_rows", sa.Integer, nullable=False),
    sa.Column("bad_row_share", sa.Float, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("result_uri", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
)

drift_metrics = sa.Table(
    "drift_metrics",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("critical", sa.Boolean, nullable=False),
    sa.Column("model_version", sa.String(32)),
    sa.Index("ix_drift_metrics_feature_trend", "model", "feature", "dt"),
)

drift_nights = sa.Table(
    "drift_nights",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("model_version", sa.String(32)),
    sa.Column("drift_share", sa.Float, nullable=False),
    sa.Column("dataset_drift", sa.Boolean, nullable=False),
    sa.Column("drifted_features", sa.Text, nullable=False),
    sa.Column("critical_drifted", sa.Text, nullable=False),
    sa.Column("prediction_drifted", sa.Boolean),
    sa.Column("report_uri", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
)

retrain_decisions = sa.Table(
    "retrain_decisions",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("requested", sa.Boolean, nullable=False),
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("report_uri", sa.Text),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("run_type", sa.String(32), nullable=False),
    sa.Column("rules", sa.Text),
)
"""`rules` (JSON, migration 0007): each rule's verdict and figures (drift, performance); NULL before 0007 and for nights
decided before a rule applied (backfill, no champion yet)."""
_requested = retrain_decisions.c.requested.is_(True)
sa.Index(
    "ix_retrain_decisions_requested",
    retrain_decisions.c.model,
    retrain_decisions.c.dt,
    postgresql_where=_requested,
    sqlite_where=_requested,
)

promotion_ledger = sa.Table(
    "promotion_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("as_of", sa.Date),
    sa.Column("candidate_version", sa.String(32)),
    sa.Column("previous_version", sa.String(32)),
    sa.Column("champion_after", sa.String(32)),
    sa.Column("metric", sa.String(32)),
    sa.Column("candidate_score", sa.Float),
    sa.Column("champion_score", sa.Float),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model", "run_id", "action", name="uq_ledger_run"),
)


scoring_backlog = sa.Table(
    "scoring_backlog",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("scored_version", sa.String(32)),
    sa.Column("scored_run_id", sa.String(250)),
)
"""One row per night left without predictions: `unscored` with its reason and command until the night is scored and
re-measured, then `scored` with the version and run that did it (see `nightshift.stages.backlog`)."""
UNSCORED, SCORED = "unscored", "scored"

STAGES = ("validation", "drift", "decision")
night_runs_table = sa.Table(
    "night_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("dt", sa.Date, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("run_type", sa.String(32)),
    sa.Column("model_version", sa.String(32)),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("stage IN ('validation', 'drift', 'decision')", name="ck_night_runs_stage"),
    sa.Index("ix_night_runs_model_dt", "model", "dt"),
)
"""Append-only: one row each time a run records a night's validation, drift or retrain decision (`STAGES`), beside
the night's current row that the rerun replaced; `details` is the row that stage wrote, as JSON."""

performance_nights = sa.Table(
    "performance_nights",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("labelled_rows", sa.Integer, nullable=False),
    sa.Column("coverage", sa.Float, nullable=False),
    sa.Column("labels_through", sa.Date, nullable=False),
    sa.Column("metric", sa.String(32), nullable=False),
    sa.Column("reference", sa.Float),
    sa.Column("realized", sa.Float),
    sa.Column("estimated", sa.Float),
    sa.Column("estimated_lower", sa.Float),
    sa.Column("estimated_upper", sa.Float),
    sa.Column("basis", sa.String(16)),
    sa.Column("degraded", sa.Boolean, nullable=False),
    sa.Column("concept_drift", sa.Boolean, nullable=False),
    sa.Column("page_uri", sa.Text),
    sa.Column("run_id", sa.String(250), nullable=False),
)
"""One row per model, scored night and alias: the performance rule's metric realized (once labels arrived, with their
coverage) and estimated (CBPE, with its 95% band), the scoring version's holdout figure it is judged against, which of
the two judged the night (`basis`: realized, estimated or NULL when neither could) and the verdicts."""

performance_metrics = sa.Table(
    "performance_metrics",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("slice", sa.String(300), primary_key=True),
    sa.Column("metric", sa.String(32), primary_key=True),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("lower", sa.Float),
    sa.Column("upper", sa.Float),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("labelled_rows", sa.Integer, nullable=False),
    sa.Column("coverage", sa.Float, nullable=False),
    sa.Column("labels_through", sa.Date, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Index("ix_performance_metrics_trend", "model", "metric", "dt"),
)
"""Every metric of the model's kind per night, alias, `kind` (realized or estimated) and `slice` ('' for all rows,
else 'column=value' of a spec slice): its value (NULL where undefined, e.g. AUC on one class), the estimate's band."""
REALIZED, ESTIMATED = "realized", "estimated"

data_quality = sa.Table(
    "data_quality",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("missing_share", sa.Float, nullable=False),
    sa.Column("reference_missing_share", sa.Float),
    sa.Column("out_of_range_share", sa.Float),
    sa.Column("unseen_category_share", sa.Float),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
)
"""One row per model, night and feature: missing values, values outside the reference's range (numeric features) and
categories the reference never saw (category features), as shares of the night's drift sample; `reasons` (JSON list)
says which threshold of `drift.data_quality` each flag crossed."""

alerts_sent = sa.Table(
    "alerts_sent",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("event", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("channel", sa.String(64), primary_key=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)
"""One row per alert delivered: model, night, event, run, `key` ('' for a night's event; a failed task's id, map index
and try) and channel. The alert task skips what a row says was delivered, so a retry never sends it twice."""

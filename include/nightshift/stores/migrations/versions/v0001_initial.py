"""The schema `warehouse.connect` created with `metadata.create_all` before migrations existed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_predictions()
    _create_validation_runs()
    _create_drift_metrics()
    _create_drift_nights()
    _create_retrain_decisions()
    _create_promotion_ledger()


def _create_predictions() -> None:
    op.create_table(
        "predictions",
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dt", sa.Date, nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
    )
    op.create_index("ix_predictions_model_dt_alias", "predictions", ["model", "dt", "alias"])


def _create_validation_runs() -> None:
    op.create_table(
        "validation_runs",
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


def _create_drift_metrics() -> None:
    op.create_table(
        "drift_metrics",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("dt", sa.Date, primary_key=True),
        sa.Column("feature", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("critical", sa.Boolean, nullable=False),
        sa.Column("model_version", sa.String(32)),
    )


def _create_drift_nights() -> None:
    op.create_table(
        "drift_nights",
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


def _create_retrain_decisions() -> None:
    op.create_table(
        "retrain_decisions",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("dt", sa.Date, primary_key=True),
        sa.Column("requested", sa.Boolean, nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("report_uri", sa.Text),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("run_type", sa.String(32), nullable=False),
    )


def _create_promotion_ledger() -> None:
    op.create_table(
        "promotion_ledger",
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

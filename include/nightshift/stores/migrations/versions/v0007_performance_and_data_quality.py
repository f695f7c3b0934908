"""Live performance and data quality: `performance_nights`, `performance_metrics`, `data_quality`, and the rules
behind a retrain decision.

Three new tables, written by the nightly DAG's performance and drift tasks (see `nightshift.stores.warehouse.tables`
for what each column holds), and a nullable `rules` column on `retrain_decisions` (each rule's verdict and figures, as
JSON text; existing rows stay NULL). Downgrading drops them and what they held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("retrain_decisions", sa.Column("rules", sa.Text))
    op.create_table(
        "performance_nights",
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
    op.create_table(
        "performance_metrics",
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
    )
    op.create_index("ix_performance_metrics_trend", "performance_metrics", ["model", "metric", "dt"])
    op.create_table(
        "data_quality",
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


def downgrade() -> None:
    op.drop_table("data_quality")
    op.drop_index("ix_performance_metrics_trend", table_name="performance_metrics")
    op.drop_table("performance_metrics")
    op.drop_table("performance_nights")
    with op.batch_alter_table("retrain_decisions") as batch:
        batch.drop_column("rules")

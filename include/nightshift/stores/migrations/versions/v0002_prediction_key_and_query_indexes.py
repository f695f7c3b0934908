"""One prediction per (model, night, alias, entity), and indexes for drift trending and the last retrain request.

- `ux_predictions_night_entity` makes the natural key of a prediction unique; it also serves every query the old
  `ix_predictions_model_dt_alias` served (same leading columns), so that index is dropped. It is created last: on a
  warehouse holding two rows for one key it fails, and the whole revision rolls back.
- `ix_drift_metrics_feature_trend` (model, feature, dt) serves "this feature over time"; the primary key
  (model, dt, feature) only serves "every feature on one night".
- `ix_retrain_decisions_requested` (model, dt) over the requested rows serves `warehouse.last_requested`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

REQUESTED = sa.column("requested", sa.Boolean).is_(True)


def upgrade() -> None:
    op.create_index("ix_drift_metrics_feature_trend", "drift_metrics", ["model", "feature", "dt"])
    op.create_index(
        "ix_retrain_decisions_requested",
        "retrain_decisions",
        ["model", "dt"],
        postgresql_where=REQUESTED,
        sqlite_where=REQUESTED,
    )
    op.create_index("ux_predictions_night_entity", "predictions", ["model", "dt", "alias", "entity_id"], unique=True)
    op.drop_index("ix_predictions_model_dt_alias", table_name="predictions")

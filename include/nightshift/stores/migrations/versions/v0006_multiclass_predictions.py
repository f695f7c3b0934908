"""Multiclass predictions: `predicted_label` and `class_probabilities` on `predictions`, both nullable.

A multiclass model's rows hold the predicted class (`predicted_label`, at most 200 characters) and one probability
per class, keyed by class name (`class_probabilities`: JSONB on Postgres, JSON text on SQLite); `score` stays the
predicted class's probability. Binary and regression rows leave both NULL, so existing rows need no rewrite: on
Postgres adding a nullable column without a default changes only the catalog, for the partitioned table and every
night at once. Downgrading drops both columns and what they held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

JSON_OBJECT = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.add_column("predictions", sa.Column("predicted_label", sa.String(200)))
    op.add_column("predictions", sa.Column("class_probabilities", JSON_OBJECT))


def downgrade() -> None:
    op.drop_column("predictions", "class_probabilities")
    op.drop_column("predictions", "predicted_label")

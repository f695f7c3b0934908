"""Reading predictions back: a night's rows of one alias, and the share of each class a multiclass model predicted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores.warehouse.database import _reading
from nightshift.stores.warehouse.tables import predictions


def night_predictions(engine: Engine, model: str, day: dt.date, alias: str = "champion") -> list[dict[str, Any]]:
    """A night's predictions by one alias, by entity; `class_probabilities` comes back as a dict (None unless
    the model is multiclass)."""
    t = predictions
    query = sa.select(t).where(t.c.model == model, t.c.dt == day, t.c.alias == alias).order_by(t.c.entity_id)
    with _reading(engine, f"reading the {alias} predictions of {model} {day}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def class_shares(engine: Engine, model: str, day: dt.date, alias: str = "champion") -> dict[str, float]:
    """The share of a night's predictions (by `alias`) that predicted each class; {} for a model of another kind or a
    night without predictions."""
    t = predictions
    query = (
        sa.select(t.c.predicted_label, sa.func.count())
        .where(t.c.model == model, t.c.dt == day, t.c.alias == alias, t.c.predicted_label.is_not(None))
        .group_by(t.c.predicted_label)
    )
    with _reading(engine, f"counting the predicted classes of {model} {day}") as connection:
        counts = {str(label): int(count) for label, count in connection.execute(query)}
    total = sum(counts.values())
    return {label: counts[label] / total for label in sorted(counts)}

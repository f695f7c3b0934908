"""What every nightly stage's tasks share: the night they run for, the warehouse they record into, and the
staging area where a run's mapped tasks leave their pieces for the commit step.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from nightshift.config import ModelSpec, Settings, get_spec, settings
from nightshift.runs import RunInfo
from nightshift.stores.objects import ObjectStore, open_store, partition_key


@dataclass(frozen=True)
class Night:
    """One model's night: its spec, its date, the settings and the object store its stages read and write."""

    spec: ModelSpec
    day: dt.date
    settings: Settings
    store: ObjectStore

    @property
    def dt(self) -> str:
        return self.day.isoformat()

    def key(self, area: str) -> str:
        return partition_key(area, self.spec.name, self.dt)


def night(model: str, day: str | dt.date) -> Night:
    config = settings()
    spec = get_spec(model, config.models_dir)
    date = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    return Night(spec, date, config, open_store(config.store_uri))


def open_warehouse(config: Settings) -> Any:
    """The engine of the configured warehouse; `stores.warehouse` is imported only when a stage records."""
    from nightshift.stores import warehouse

    return warehouse.connect(config.warehouse_url)


def staging_prefix(current: Night, run: RunInfo | None = None) -> str:
    """Where a run's mapped tasks leave their pieces for the commit step (under the night when `run` is None)."""
    base = f"staging/{current.spec.name}/dt={current.dt}"
    return f"{base}/run={re.sub(r'[^A-Za-z0-9._-]', '_', run.run_id)}" if run else base

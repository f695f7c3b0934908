"""An unreachable MLflow server fails fast with a message naming it, before anything is written."""

from __future__ import annotations

import time

import pytest

from tests.servers import free_port


def test_unreachable_tracking_server_is_named(home, monkeypatch):
    from nightshift.config import settings
    from nightshift.stores import registry

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    started = time.monotonic()
    with pytest.raises(registry.RegistryError) as caught:
        registry.alias_version(settings(), "credit_risk", registry.CHAMPION)
    assert time.monotonic() - started < 30
    assert f"MLflow tracking server at {url} is unreachable" in str(caught.value)
    assert "nightshift_mlflow" in str(caught.value)


def test_nightly_score_fails_readably_and_leaves_no_partition(home, monkeypatch, demo_spec):
    import datetime as dt

    from nightshift.config import settings
    from nightshift.runs import RunInfo
    from nightshift.stages.score import tasks as score_tasks
    from nightshift.stages.validate import tasks as validate_tasks
    from nightshift.stores.objects import open_store
    from nightshift.stores.registry import RegistryError
    from nightshift_dev.simulate import SimulationPlan, simulate

    store = open_store(settings().store_uri)
    simulate(store, demo_spec, SimulationPlan(start=dt.date(2026, 10, 1), days=1, rows_per_day=200))
    validate_tasks.validate("credit_risk", "2026-10-01", RunInfo("r", "manual"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match="is unreachable"):
        score_tasks.score("credit_risk", "2026-10-01", RunInfo("r", "manual"))
    assert not store.exists("predictions/credit_risk/dt=2026-10-01/_SUCCESS")

"""The registry client leaves the process environment as it found it; promotions re-check under the lock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from nightshift.config import settings
from nightshift.runtime import embedded_db
from nightshift.stores import registry


def test_using_the_registry_does_not_pin_later_settings_to_its_server(home, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    first = dataclasses.replace(settings(), mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    assert registry.alias_version(first, "credit_risk", registry.CHAMPION) is None
    assert "MLFLOW_TRACKING_URI" not in os.environ

    other_home = tmp_path / "other"
    other_home.mkdir()
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(other_home))
    assert settings().mlflow_tracking_uri == embedded_db.url(other_home.resolve(), "mlflow")
    assert settings().mlflow_tracking_uri != first.mlflow_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/else.db")
    registry.client(first)
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////somewhere/else.db"


MODEL = "credit_risk"
WHEN = dt.datetime(2026, 10, 2, 3, 0, tzinfo=dt.UTC)
HOLD_LOCK = """
import sys
import sqlalchemy as sa
from nightshift.stores import locks
with locks.promotion_lock(sa.create_engine(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _evaluation(candidate: str, champion: str | None, value: float = 0.81) -> dict[str, Any]:
    return {
        "model": MODEL,
        "as_of": "2026-10-01",
        "candidate_version": candidate,
        "candidate": {"metric": "roc_auc", "value": value, "rows": 1000, "slices": {}},
        "champion_version": champion,
        "champion": None if champion is None else {"metric": "roc_auc", "value": 0.72, "rows": 1000, "slices": {}},
    }


@pytest.fixture
def versions(home: Path) -> list[str]:
    """Three registered versions of the demo model; version 1 is champion (its artifacts are never loaded)."""
    config = settings()
    client = registry.client(config)
    client.create_registered_model(MODEL)
    made = [str(client.create_model_version(MODEL, source=(home / "src").as_uri()).version) for _ in range(3)]
    registry.move_champion(config, MODEL, made[0])
    return made


def _ledger() -> list[dict[str, Any]]:
    from nightshift.stores import warehouse

    engine = warehouse.connect(settings().warehouse_url)
    try:
        return warehouse.ledger(engine, MODEL)
    finally:
        engine.dispose()


def _champion() -> str | None:
    found = registry.alias_version(settings(), MODEL, registry.CHAMPION)
    return found.version if found else None


def test_a_promotion_compared_with_a_replaced_champion_is_refused_and_recorded(versions):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    first, second, third = versions
    won = lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, RunInfo("run-a", "manual"), WHEN)
    lost = lifecycle.promote_or_refuse(MODEL, _evaluation(third, first), {}, RunInfo("run-b", "manual"), WHEN)

    assert won["action"] == "promote" and won["champion"] == second
    assert lost["action"] == "refuse" and lost["champion"] == second
    assert lost["reasons"][0] == (
        f"the champion is now version {second} (moved there by the promote of run run-a at "
        f"{_ledger()[0]['decided_at']}), not version {first} that this candidate was compared with; nothing was "
        "changed. Retrain again (or clear this run's evaluate task) to compare the candidate with the current champion"
    )
    assert _champion() == second
    rows = [(row["run_id"], row["action"], row["candidate_version"], row["champion_after"]) for row in _ledger()]
    assert rows == [("run-a", "promote", second, second), ("run-b", "refuse", third, second)]


def test_a_retried_promotion_returns_what_it_recorded_without_a_second_row(versions):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    first, second, _ = versions
    run = RunInfo("run-a", "manual")
    once = lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, run, WHEN)
    again = lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, run, WHEN)
    assert again == once
    assert [row["action"] for row in _ledger()] == ["promote"]


def test_an_alias_moved_by_an_earlier_attempt_without_its_row_is_recorded(versions):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    first, second, _ = versions
    registry.move_champion(settings(), MODEL, second)
    decision = lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, RunInfo("run-a", "manual"), WHEN)
    assert decision["action"] == "promote" and _champion() == second
    assert decision["reasons"][-1].startswith(f"champion already pointed at version {second}")
    [row] = _ledger()
    assert (row["action"], row["previous_version"], row["champion_after"]) == ("promote", first, second)


def test_a_failed_alias_move_leaves_no_ledger_row(versions, monkeypatch):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    first, second, _ = versions

    def unreachable(*args: Any) -> None:
        raise registry.RegistryError("MLflow went away")

    monkeypatch.setattr(registry, "move_champion", unreachable)
    with pytest.raises(registry.RegistryError, match="MLflow went away"):
        lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, RunInfo("run-a", "manual"), WHEN)
    assert _ledger() == []
    assert _champion() == first


def test_a_gate_refusal_is_recorded_under_the_lock(versions):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    first, second, _ = versions
    decision = lifecycle.promote_or_refuse(
        MODEL, _evaluation(second, first, value=0.70), {}, RunInfo("run-a", "manual"), WHEN
    )
    assert decision["action"] == "refuse" and decision["champion"] == first
    assert [(row["action"], row["champion_after"]) for row in _ledger()] == [("refuse", first)]


def test_rollback_moves_back_under_the_lock_and_a_retry_does_not_undo_it(versions):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    first, second, _ = versions
    lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, RunInfo("run-a", "manual"), WHEN)
    run = RunInfo("rollback-1", "manual")
    back = lifecycle.rollback(MODEL, None, "bad night", run, WHEN)
    assert back == {"model": MODEL, "action": "rollback", "champion": first, "previous": second}
    assert lifecycle.rollback(MODEL, None, "bad night", run, WHEN) == back
    assert _champion() == first
    assert [row["action"] for row in _ledger()] == ["promote", "rollback"]


def test_the_sqlite_promotion_lock_holds_across_processes(home, python):
    import sqlalchemy as sa

    from nightshift.stores import locks

    url = f"sqlite:///{home / 'warehouse.db'}"
    holder = subprocess.Popen(
        [python, "-c", HOLD_LOCK, url, MODEL], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    engine = sa.create_engine(url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(locks.PromotionLockTimeout) as caught, locks.promotion_lock(engine, MODEL, timeout=0.5):
            pass
        assert time.monotonic() - started >= 0.5
        assert str(caught.value) == (
            f"model {MODEL}: another promotion or rollback has held the promotion lock (file lock "
            f"{home / 'warehouse.db'}.promotion-{MODEL}.lock) for more than 0.5 s; nothing was changed. Wait for it to "
            "finish, then run this one again"
        )
        with locks.promotion_lock(engine, "another_model", timeout=0.5):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    with locks.promotion_lock(engine, MODEL, timeout=5) as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def test_a_ledger_row_that_does_not_commit_puts_the_champion_back(versions, monkeypatch):
    from contextlib import contextmanager

    import sqlalchemy as sa

    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo
    from nightshift.stores import locks
    from nightshift.stores.warehouse import WarehouseError

    first, second, _ = versions
    real_lock = locks.promotion_lock

    class Lost(Exception):
        pass

    @contextmanager
    def lost_at_commit(engine: Any, model: str, timeout: float | None = None) -> Any:
        """The real lock, whose transaction is rolled back and reported as a failed COMMIT."""
        try:
            with real_lock(engine, model, timeout) as connection:
                yield connection
                raise Lost
        except Lost:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection")) from None

    monkeypatch.setattr(locks, "promotion_lock", lost_at_commit)
    with pytest.raises(WarehouseError) as caught:
        lifecycle.promote_or_refuse(MODEL, _evaluation(second, first), {}, RunInfo("run-a", "manual"), WHEN)
    assert str(caught.value).startswith(f"model {MODEL}: the ledger row for version {second} did not commit (")
    assert str(caught.value).endswith(f"the champion was moved back to version {first}")
    assert _champion() == first
    assert _ledger() == []

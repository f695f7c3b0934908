"""Promotions race in two real processes against a PostgreSQL warehouse and a real MLflow registry: one winner.

MLflow's backend store is a throwaway database on the same PostgreSQL server (as in production); the warehouse is
another. Each trial makes a champion and two candidates compared with it, then releases both processes at once.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import postgres

MODEL = "credit_risk"
TRIALS = 20
WHEN = dt.datetime(2026, 10, 2, 3, 0, tzinfo=dt.UTC)


def evaluation(candidate: str, champion: str) -> dict[str, Any]:
    """What evaluate_candidate returns for a candidate that clears the gate against `champion`."""
    return {
        "model": MODEL,
        "as_of": "2026-10-01",
        "holdout_dates": ["2026-10-01"],
        "candidate_version": candidate,
        "candidate": {"metric": "roc_auc", "value": 0.81, "rows": 1000, "slices": {}},
        "champion_version": champion,
        "champion": {"metric": "roc_auc", "value": 0.72, "rows": 1000, "slices": {}},
    }


def promoter(name: str, tasks: Any, results: Any, barrier: Any) -> None:
    """A worker process: for each task, wait for the other worker, then promote at the same instant."""
    from nightshift.config import settings
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo
    from nightshift.stores import registry, warehouse

    config = settings()
    warehouse.connect(config.warehouse_url).dispose()
    registry.alias_version(config, MODEL, registry.CHAMPION)
    results.put(("ready", name))
    while (task := tasks.get()) is not None:
        trial, candidate, champion = task
        run = RunInfo(f"trial-{trial}-{name}", "manual", actor=f"test:{name}")
        barrier.wait(timeout=120)
        started = time.time()
        try:
            decision = lifecycle.promote_or_refuse(MODEL, evaluation(candidate, champion), {}, run, WHEN)
        except Exception as exc:
            decision = {"action": "error", "error": f"{type(exc).__name__}: {exc}"}
        results.put((trial, name, candidate, decision, started, time.time()))


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    reason = postgres.unavailable()
    if reason:
        pytest.skip(reason)
    with (
        postgres.throwaway_database("nightshift_wh") as warehouse_db,
        postgres.throwaway_database("nightshift_ml") as mlflow_db,
    ):
        yield postgres.url_for(warehouse_db), postgres.url_for(mlflow_db)


@pytest.fixture
def servers(databases: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Settings on the PostgreSQL warehouse and MLflow backend, with model `credit_risk` registered."""
    from nightshift.config import settings
    from nightshift.stores import registry, warehouse

    warehouse_url, mlflow_url = databases
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    config = settings()
    warehouse.connect(config.warehouse_url).dispose()
    client = registry.client(config)
    if not client.search_registered_models(f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    return config


def new_version(config: Any) -> str:
    """A real registry version (its artifacts are never loaded here: promotion only moves aliases)."""
    from nightshift.stores import registry

    client = registry.client(config)
    source = (config.home / "model-source").as_uri()
    return str(client.create_model_version(MODEL, source=source).version)


def champion_of(config: Any) -> str | None:
    from nightshift.stores import registry

    found = registry.alias_version(config, MODEL, registry.CHAMPION)
    return found.version if found else None


def trial_rows(config: Any, trial: int) -> list[dict[str, Any]]:
    from nightshift.stores import warehouse

    engine = warehouse.connect(config.warehouse_url)
    try:
        return [row for row in warehouse.ledger(engine, MODEL) if row["run_id"].startswith(f"trial-{trial}-")]
    finally:
        engine.dispose()


def check_trial(config: Any, trial: int, champion: str, outcomes: list[tuple[Any, ...]]) -> None:
    decisions = {name: (candidate, decision) for _, name, candidate, decision, _, _ in outcomes}
    assert all(decision["action"] in ("promote", "refuse") for _, decision in decisions.values()), decisions
    winners = [candidate for candidate, decision in decisions.values() if decision["action"] == "promote"]
    losers = [candidate for candidate, decision in decisions.values() if decision["action"] == "refuse"]
    assert len(winners) == 1 and len(losers) == 1, f"trial {trial}: {decisions}"
    winner, loser = winners[0], losers[0]
    assert champion_of(config) == winner

    rows = trial_rows(config, trial)
    promotes = [row for row in rows if row["action"] == "promote"]
    refusals = [row for row in rows if row["action"] == "refuse"]
    assert len(rows) == 2 and len(promotes) == 1 and len(refusals) == 1, f"trial {trial}: {rows}"
    assert promotes[0]["candidate_version"] == winner and promotes[0]["previous_version"] == champion
    assert promotes[0]["champion_after"] == winner
    refusal = refusals[0]
    assert refusal["candidate_version"] == loser and refusal["champion_after"] == winner
    assert refusal["reasons"][0].startswith(
        f"the champion is now version {winner} (moved there by the promote of run {promotes[0]['run_id']}"
    )
    assert f"not version {champion} that this candidate was compared with; nothing was changed" in refusal["reasons"][0]


def test_two_processes_promoting_at_once_give_exactly_one_winner(servers):
    config = servers
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    tasks = {name: context.Queue() for name in ("a", "b")}
    workers = [context.Process(target=promoter, args=(name, tasks[name], results, barrier)) for name in tasks]
    for worker in workers:
        worker.start()
    overlapped = 0
    seconds: dict[str, list[float]] = {"promote": [], "refuse": []}
    try:
        assert {results.get(timeout=300)[1] for _ in workers} == {"a", "b"}
        for trial in range(TRIALS):
            champion = new_version(config)
            from nightshift.stores import registry

            registry.client(config).set_registered_model_alias(MODEL, registry.CHAMPION, champion)
            candidates = {name: new_version(config) for name in tasks}
            for name, queue in tasks.items():
                queue.put((trial, candidates[name], champion))
            outcomes = [results.get(timeout=120) for _ in workers]
            check_trial(config, trial, champion, outcomes)
            (_, _, _, _, start_1, end_1), (_, _, _, _, start_2, end_2) = outcomes
            overlapped += max(start_1, start_2) < min(end_1, end_2)
            for _, _, _, decision, started, ended in outcomes:
                seconds[decision["action"]].append(ended - started)
    finally:
        for queue in tasks.values():
            queue.put(None)
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    means = {action: sum(values) / len(values) for action, values in seconds.items()}
    print(
        f"{overlapped} of {TRIALS} trials had both promotions running at the same time; mean seconds per call: "
        f"winner {means['promote']:.2f}, loser {means['refuse']:.2f}"
    )
    assert overlapped >= TRIALS // 2


def test_rollback_waits_for_the_promotion_lock(servers, monkeypatch):
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo
    from nightshift.stores import locks, registry, warehouse

    config = servers
    first, second = new_version(config), new_version(config)
    registry.client(config).set_registered_model_alias(MODEL, registry.CHAMPION, second)
    engine = warehouse.connect(config.warehouse_url)
    outcome: dict[str, Any] = {}

    def roll_back() -> None:
        outcome["result"] = lifecycle.rollback(MODEL, first, "bad night", RunInfo("rollback-1", "manual"), WHEN)

    try:
        with locks.promotion_lock(engine, MODEL):
            thread = threading.Thread(target=roll_back)
            thread.start()
            thread.join(timeout=2)
            assert thread.is_alive(), outcome
            assert champion_of(config) == second
        thread.join(timeout=60)
        assert outcome["result"] == {"model": MODEL, "action": "rollback", "champion": first, "previous": second}
        assert champion_of(config) == first

        monkeypatch.setattr(locks, "LOCK_TIMEOUT_SECONDS", 1.0)
        with locks.promotion_lock(engine, MODEL), pytest.raises(locks.PromotionLockTimeout) as caught:
            lifecycle.rollback(MODEL, second, "again", RunInfo("rollback-2", "manual"), WHEN)
        assert str(caught.value).startswith(
            f"model {MODEL}: another promotion or rollback has held the promotion lock (PostgreSQL advisory lock "
            f"{locks.lock_key(MODEL)}) for more than 1 s; nothing was changed"
        )
        assert champion_of(config) == first
        assert not [row for row in warehouse.ledger(engine, MODEL) if row["run_id"] == "rollback-2"]
    finally:
        engine.dispose()

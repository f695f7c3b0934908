"""Retrain, evaluate, promote and roll back, as the retrain and rollback DAGs call them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from typing import Any

from nightshift.config import ModelSpec, Settings, get_spec, settings
from nightshift.runs import RunInfo
from nightshift.stores.objects import open_store


class RetrainRequestError(ValueError):
    """A retrain run was started without a usable date or recipe; the message says what to pass."""


def code_version() -> str:
    """The git commit of the project, or the NIGHTSHIFT_CODE_VERSION set at deploy time."""
    if os.environ.get("NIGHTSHIFT_CODE_VERSION"):
        return os.environ["NIGHTSHIFT_CODE_VERSION"]
    from nightshift.config import PROJECT_ROOT

    try:
        found = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return found.stdout.strip() or "unknown"


def latest_curated_date(model: str) -> dt.date | None:
    config = settings()
    store = open_store(config.store_uri)
    dates = sorted(
        {key.split("dt=", 1)[1].split("/", 1)[0] for key in store.list(f"curated/{model}") if "/labels/" not in key}
    )
    return dt.date.fromisoformat(dates[-1]) if dates else None


def resolve_request(model: str, events: list[dict[str, Any]], params: dict[str, Any], run: RunInfo) -> dict[str, Any]:
    """Pick the as-of date and reasons: from the triggering asset events, else the run's params, else the latest data."""
    get_spec(model)
    requests = [extra for extra in events if extra.get("model") == model and extra.get("dt")]
    if requests:
        latest = max(requests, key=lambda extra: extra["dt"])
        return {
            "as_of": latest["dt"],
            "trigger": "asset",
            "reasons": latest.get("reasons", []),
            "drifted_features": latest.get("drifted_features", {}),
            "report": latest.get("report"),
            "events": len(requests),
        }
    as_of = params.get("as_of")
    if as_of:
        try:
            dt.date.fromisoformat(str(as_of))
        except ValueError:
            raise RetrainRequestError(f"param as_of={as_of!r}: expected a date as YYYY-MM-DD") from None
    else:
        latest_day = latest_curated_date(model)
        if latest_day is None:
            raise RetrainRequestError(
                f"model {model}: no curated data yet; run the nightly DAG first or pass as_of=YYYY-MM-DD"
            )
        as_of = latest_day.isoformat()
    reason = params.get("reason") or f"{run.run_type} run"
    return {"as_of": str(as_of), "trigger": run.run_type, "reasons": [reason], "drifted_features": {}, "report": None}


def train_candidate(model: str, request: dict[str, Any], params: dict[str, Any], run: RunInfo) -> dict[str, Any]:
    """Train on the window ending as_of, log the candidate with its reference sample and mark it `challenger`."""
    from nightshift.kinds import kind_of, model_inputs, outputs
    from nightshift.lifecycle.evaluate import evaluate_scores
    from nightshift.lifecycle.train import build_training_set, fit_candidate, reference_sample, reference_statistics
    from nightshift.stages.performance.estimate import calibration_frame
    from nightshift.stores import registry

    config = settings()
    spec = get_spec(model, config.models_dir)
    store = open_store(config.store_uri)
    as_of = dt.date.fromisoformat(request["as_of"])
    training = build_training_set(store, spec, as_of)
    estimator = params.get("estimator") or spec.estimator
    estimator_params = _estimator_params(params, spec, estimator)
    pipeline = fit_candidate(spec, training, estimator, estimator_params)
    holdout_outputs = outputs(pipeline, training.holdout, spec)
    holdout_metrics = evaluate_scores(spec, training.holdout, holdout_outputs)
    holdout_labels = kind_of(spec).metric_labels(training.holdout[spec.target.column], spec)
    train_scores = outputs(pipeline, training.train, spec)
    reference = reference_sample(training.train, spec, train_scores, spec.training.seed)
    described = training.describe()
    tags = _candidate_tags(request, described, run, estimator)
    version = registry.log_candidate(
        config,
        model,
        pipeline,
        input_example=model_inputs(training.train.head(50), spec),
        params={"estimator": estimator, **estimator_params, **{f"data.{k}": v for k, v in described.items()}},
        metrics={
            **{f"holdout_{name}": value for name, value in holdout_metrics["metrics"].items() if value is not None},
            "train_rows": float(described["train_rows"]),
            "holdout_rows": float(described["holdout_rows"]),
        },
        tags=tags,
        reference=reference,
        reference_stats=reference_statistics(reference, spec),
        run_name=f"{model}-{request['as_of']}-{run.run_id}"[:250],
        kind=kind_of(spec),
        calibration=calibration_frame(holdout_outputs, holdout_labels),
    )
    return {
        "model": model,
        "version": version.version,
        "mlflow_run_id": version.run_id,
        "as_of": request["as_of"],
        "estimator": estimator,
        "training": described,
    }


def _estimator_params(params: dict[str, Any], spec: ModelSpec, estimator: str) -> dict[str, Any]:
    """The run's estimator_params, else the spec's params when it trains the spec's estimator, else none."""
    if params.get("estimator_params") is not None:
        return dict(params["estimator_params"])
    if estimator == spec.estimator:
        return dict(spec.training.params)
    return {}


def _candidate_tags(request: dict[str, Any], described: dict[str, Any], run: RunInfo, estimator: str) -> dict[str, str]:
    """The MLflow tags that say what a candidate was trained on, why, from which code and by which run."""
    return {
        "nightshift.as_of": request["as_of"],
        "nightshift.window_start": described["window_start"],
        "nightshift.window_end": described["window_end"],
        "nightshift.trigger": str(request.get("trigger")),
        "nightshift.reasons": json.dumps(request.get("reasons", []))[:4000],
        "nightshift.drifted_features": json.dumps(request.get("drifted_features", {}))[:4000],
        "nightshift.code_version": code_version(),
        "nightshift.airflow_run_id": run.run_id,
        "nightshift.estimator": estimator,
    }


def evaluate_candidate(model: str, candidate: dict[str, Any]) -> dict[str, Any]:
    """Score the candidate and the current champion on the same holdout."""
    from nightshift.kinds import outputs
    from nightshift.lifecycle.evaluate import evaluate_scores
    from nightshift.lifecycle.train import build_training_set
    from nightshift.stores import registry

    config = settings()
    spec = get_spec(model, config.models_dir)
    training = build_training_set(open_store(config.store_uri), spec, dt.date.fromisoformat(candidate["as_of"]))
    holdout = training.holdout
    candidate_version = registry.get_version(config, model, candidate["version"])
    candidate_model = registry.load_model(config, candidate_version)
    result: dict[str, Any] = {
        "model": model,
        "as_of": candidate["as_of"],
        "holdout_dates": [day.isoformat() for day in training.holdout_dates],
        "candidate_version": candidate_version.version,
        "candidate": evaluate_scores(spec, holdout, outputs(candidate_model, holdout, spec)),
        "champion_version": None,
        "champion": None,
    }
    champion = registry.alias_version(config, model, registry.CHAMPION)
    if champion is not None:
        champion_model = registry.load_model(config, champion)
        result["champion_version"] = champion.version
        result["champion"] = evaluate_scores(spec, holdout, outputs(champion_model, holdout, spec))
    return result


def _ledger_row(model: str, action: str, run: RunInfo, when: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {"model": model, "action": action, "actor": run.actor, "run_id": run.run_id, "decided_at": when, **fields}


def _recorded(rows: list[dict[str, Any]], run: RunInfo, action: str, champion: str | None) -> dict[str, Any] | None:
    """This run's own `action` row, when the champion is still where it left it (a retried task)."""
    found = [row for row in rows if row["run_id"] == run.run_id and row["action"] == action]
    return found[-1] if found and found[-1]["champion_after"] == champion else None


def _moved_by(rows: list[dict[str, Any]], version: str | None) -> str:
    moves = [row for row in rows if row["action"] in ("promote", "rollback") and row["champion_after"] == version]
    if not moves:
        return "not by a promotion or rollback in the ledger"
    last = moves[-1]
    return f"by the {last['action']} of run {last['run_id']} at {last['decided_at']}"


def _changed_reason(evaluated: str | None, current: str | None, rows: list[dict[str, Any]]) -> str:
    return (
        f"the champion is now version {current} (moved there {_moved_by(rows, current)}), not version {evaluated} "
        "that this candidate was compared with; nothing was changed. Retrain again (or clear this run's evaluate "
        "task) to compare the candidate with the current champion"
    )


def _plan(
    gate: Any, evaluation: dict[str, Any], current: str | None, rows: list[dict[str, Any]]
) -> tuple[str, str | None, list[str], bool]:
    """What the promotion does under the lock: (action, champion after, reasons, whether to move the alias)."""
    evaluated, candidate = evaluation["champion_version"], evaluation["candidate_version"]
    if current == evaluated:
        return ("promote", candidate, gate.reasons, True) if gate.promote else ("refuse", current, gate.reasons, False)
    if current == candidate and gate.promote and not any(row["champion_after"] == candidate for row in rows):
        note = f"champion already pointed at version {candidate} (an earlier attempt moved it); recorded now"
        return "promote", candidate, [*gate.reasons, note], False
    return "refuse", current, [_changed_reason(evaluated, current, rows), *gate.reasons], False


def _commit_failed(config: Settings, model: str, moved_to: str, back_to: str | None, exc: Exception) -> Exception:
    """The ledger row did not commit after the alias moved: put the alias back and say what happened."""
    from nightshift.stores import registry
    from nightshift.stores.warehouse import WarehouseError

    if back_to is None:
        state = f"champion stays at version {moved_to} (there was none before) with no ledger row"
    else:
        try:
            registry.move_champion(config, model, back_to)
            state = f"champion was moved back to version {back_to}"
        except registry.RegistryError:
            state = f"champion could not be moved back and is version {moved_to}, with no ledger row"
    return WarehouseError(f"model {model}: the ledger row for version {moved_to} did not commit ({exc}); the {state}")


def promote_or_refuse(
    model: str, evaluation: dict[str, Any], request: dict[str, Any], run: RunInfo, when: dt.datetime
) -> dict[str, Any]:
    """Apply the gate; under the model's promotion lock, re-check the champion, move it and record the decision.

    Two promotions started at once give one winner: the other finds, once it holds the lock, that the champion it
    was compared with is no longer champion, and records a `refuse` row saying so.
    """
    import sqlalchemy as sa

    from nightshift.lifecycle.evaluate import decide
    from nightshift.stores import locks, registry, warehouse

    config = settings()
    spec = get_spec(model, config.models_dir)
    gate = decide(spec, evaluation["candidate"], evaluation["champion"])
    common = {
        "as_of": dt.date.fromisoformat(evaluation["as_of"]),
        "candidate_version": evaluation["candidate_version"],
        "previous_version": evaluation["champion_version"],
        "metric": spec.gate_metric,
        "candidate_score": evaluation["candidate"]["value"],
        "champion_score": (evaluation["champion"] or {}).get("value"),
        "details": {"evaluation": evaluation, "request": request},
    }
    engine = warehouse.connect(config.warehouse_url)
    moved = False
    try:
        with locks.promotion_lock(engine, model) as connection:
            current = registry.alias_version(config, model, registry.CHAMPION)
            current_version = current.version if current else None
            rows = warehouse.ledger(engine, model)
            done = _recorded(rows, run, "promote", current_version)
            if done is not None:
                return {"model": model, "action": "promote", "champion": current_version, "reasons": done["reasons"]}
            action, champion_after, reasons, move = _plan(gate, evaluation, current_version, rows)
            row = _ledger_row(model, action, run, when, champion_after=champion_after, reasons=reasons, **common)
            warehouse.append_ledger(connection, row)
            if move:
                registry.move_champion(config, model, evaluation["candidate_version"])
                moved = True
    except sa.exc.SQLAlchemyError as exc:
        if not moved:
            raise
        raise _commit_failed(config, model, evaluation["candidate_version"], current_version, exc) from None
    return {"model": model, "action": action, "champion": champion_after, "reasons": reasons}


def _rollback_target(model: str, current: str, rows: list[dict[str, Any]]) -> str:
    """The version the current champion replaced, from the ledger."""
    moves = [row for row in rows if row["action"] in ("promote", "rollback")]
    arrived = next((row for row in reversed(moves) if row["champion_after"] == current), None)
    if arrived is None or not arrived["previous_version"]:
        raise RetrainRequestError(
            f"model {model}: the ledger has no version before champion {current}; pass target_version to choose one"
        )
    return str(arrived["previous_version"])


def rollback(model: str, target_version: str | None, reason: str, run: RunInfo, when: dt.datetime) -> dict[str, Any]:
    """Move `champion` back to the version it replaced (or to `target_version`) and record it, under the promotion lock."""
    from nightshift.stores import locks, registry, warehouse

    config: Settings = settings()
    get_spec(model, config.models_dir)
    engine = warehouse.connect(config.warehouse_url)
    with locks.promotion_lock(engine, model) as connection:
        current = registry.alias_version(config, model, registry.CHAMPION)
        if current is None:
            raise RetrainRequestError(f"model {model}: there is no champion to roll back")
        rows = warehouse.ledger(engine, model)
        done = _recorded(rows, run, "rollback", current.version)
        if done is not None:
            return {
                "model": model,
                "action": "rollback",
                "champion": current.version,
                "previous": done["previous_version"],
            }
        target = registry.get_version(config, model, target_version or _rollback_target(model, current.version, rows))
        if target.version == current.version:
            raise RetrainRequestError(f"model {model}: version {target.version} is already the champion")
        row = _ledger_row(
            model,
            "rollback",
            run,
            when,
            candidate_version=target.version,
            previous_version=current.version,
            champion_after=target.version,
            reasons=[reason or "manual rollback"],
            details={"target_version": target.version},
        )
        warehouse.append_ledger(connection, row)
        registry.move_champion(config, model, target.version)
    return {"model": model, "action": "rollback", "champion": target.version, "previous": current.version}

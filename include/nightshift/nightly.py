"""The nightly stages as the DAG calls them: each takes a model name, a date and the run, returns a small dict.

Every stage reads and writes through the object store and warehouse chosen by configuration, replaces its
outputs for the date whole, and is safe to rerun.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from nightshift.config import ModelSpec, Settings, get_spec, settings
from nightshift.storage import (
    ObjectStore,
    is_complete,
    open_store,
    partition_key,
    partition_writer,
    read_json,
    remove_partition,
)


class ValidationFailed(RuntimeError):
    """The night's drop broke a blocking rule; nothing of it was curated or scored."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_type: str
    actor: str = "scheduler"

    @property
    def is_backfill(self) -> bool:
        return self.run_type == "backfill"


@dataclass(frozen=True)
class Night:
    spec: ModelSpec
    day: dt.date
    settings: Settings
    store: ObjectStore

    @property
    def dt(self) -> str:
        return self.day.isoformat()

    def key(self, area: str) -> str:
        return partition_key(area, self.spec.name, self.dt)


def run_info(context: Any) -> RunInfo:
    """Who and what started this run, read from an Airflow task context (no Airflow import needed)."""
    dag_run = context["dag_run"]
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    user = getattr(dag_run, "triggering_user_name", None)
    actor = f"user:{user}" if user else f"airflow:{run_type}"
    return RunInfo(run_id=str(dag_run.run_id), run_type=str(run_type), actor=actor)


def run_date(context: Any) -> str:
    """The date a nightly run is keyed on: its logical date, or for a run without one, its run_after date."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return str(moment.date().isoformat())


def night(model: str, day: str | dt.date) -> Night:
    config = settings()
    spec = get_spec(model, config.models_dir)
    date = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    return Night(spec, date, config, open_store(config.store_uri))


def _warehouse(config: Settings) -> Any:
    from nightshift import warehouse

    return warehouse.connect(config.warehouse_url)


def drop_ready(model: str, day: str) -> bool:
    from nightshift.ingest import drop_is_ready

    current = night(model, day)
    return drop_is_ready(current.store, current.spec, current.dt)


def validate(model: str, day: str, run: RunInfo) -> dict[str, Any]:
    """Validate the drop, quarantine bad rows with reasons, write the curated partition or fail readably."""
    import pandas as pd

    from nightshift.ingest import DropError, drop_prefix, read_drop
    from nightshift.validate import validate_frame

    current = night(model, day)
    spec, store = current.spec, current.store
    try:
        files = list(read_drop(store, spec, current.dt))
    except DropError as exc:
        _record_validation(current, run, _unreadable_result(current, str(exc)), quarantined=None, accepted=None)
        raise ValidationFailed(f"{exc}\nNothing from this drop was curated or scored.") from None
    raw = pd.concat([frame for _, frame in files], ignore_index=True)
    source = store.url_for(files[0][0]) if len(files) == 1 else store.url_for(drop_prefix(spec, current.dt))
    outcome = validate_frame(raw, spec, source)
    quarantined = _with_source_files(outcome.quarantined, files) if len(files) > 1 else outcome.quarantined
    result = {**outcome.result, "dt": current.dt, "run_id": run.run_id}
    _record_validation(current, run, result, quarantined, outcome.accepted if outcome.passed else None)
    if not outcome.passed:
        raise ValidationFailed(
            f"{outcome.failure_message}\nNothing from this drop was curated or scored. Rejected rows and reasons: "
            f"{store.url_for(current.key('quarantine'))}/rejected.csv; full result: "
            f"{store.url_for(current.key('validation'))}/result.html"
        )
    return {
        "dt": current.dt,
        "curated": store.url_for(current.key("curated")),
        "rows": int(result["rows"]),
        "accepted": int(result["accepted_rows"]),
        "quarantined": int(result["quarantined_rows"]),
    }


def _with_source_files(quarantined: Any, files: list[tuple[str, Any]]) -> Any:
    """Tag each rejected row of a multi-file drop with the file it came from."""
    import numpy as np

    starts = np.cumsum([0] + [len(frame) for _, frame in files[:-1]])
    keys = np.array([key for key, _ in files], dtype=object)
    position = np.searchsorted(starts, quarantined["_row_number"].to_numpy() - 1, side="right") - 1
    return quarantined.assign(_source_file=keys[position])


def _unreadable_result(current: Night, message: str) -> dict[str, Any]:
    from nightshift.ingest import drop_prefix

    return {
        "source": current.store.url_for(drop_prefix(current.spec, current.dt)),
        "model": current.spec.name,
        "dt": current.dt,
        "rows": 0,
        "accepted_rows": 0,
        "quarantined_rows": 0,
        "bad_row_share": 0.0,
        "max_bad_row_share": current.spec.validation.max_bad_row_share,
        "passed": False,
        "failure_message": message,
        "checks": [],
    }


def _record_validation(
    current: Night, run: RunInfo, result: dict[str, Any], quarantined: Any | None, accepted: Any | None
) -> None:
    """Persist the result and its page, the quarantine, the curated partition (or its absence), and the warehouse row."""
    from nightshift import warehouse
    from nightshift.ingest import frame_to_csv_bytes
    from nightshift.validate import render_validation_page

    store, model = current.store, current.spec.name
    result = {**result, "run_id": run.run_id}
    with partition_writer(store, current.key("validation"), {"model": model, "dt": current.dt}) as folder:
        (folder / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True))
        (folder / "result.html").write_text(render_validation_page(result))
    if quarantined is not None:
        manifest = {"model": model, "dt": current.dt, "rows": len(quarantined)}
        with partition_writer(store, current.key("quarantine"), manifest) as folder:
            (folder / "rejected.csv").write_bytes(frame_to_csv_bytes(quarantined))
    engine = _warehouse(current.settings)
    if accepted is not None:
        manifest = {"model": model, "dt": current.dt, "rows": len(accepted)}
        with partition_writer(store, current.key("curated"), manifest) as folder:
            accepted.to_parquet(folder / "part-00000.parquet", index=False)
    else:
        remove_partition(store, current.key("curated"))
        remove_partition(store, current.key("predictions"))
        warehouse.replace_predictions(engine, model, current.day, [])
    warehouse.record_validation(
        engine,
        {
            "model": model,
            "dt": current.day,
            "rows": int(result["rows"]),
            "accepted_rows": int(result["accepted_rows"]),
            "quarantined_rows": int(result["quarantined_rows"]),
            "bad_row_share": float(result["bad_row_share"]),
            "passed": bool(result["passed"]),
            "message": result.get("failure_message"),
            "result_uri": store.url_for(f"{current.key('validation')}/result.html"),
            "run_id": run.run_id,
        },
    )


def score(model: str, day: str, run: RunInfo, chunk_rows: int = 200_000) -> dict[str, Any]:
    """Score the curated partition with `champion` (and `challenger` in shadow) and load the warehouse."""
    from nightshift import registry, warehouse
    from nightshift.score import Scorer, iter_predictions, score_partition

    current = night(model, day)
    champion = registry.alias_version(current.settings, model, registry.CHAMPION)
    engine = _warehouse(current.settings)
    if champion is None:
        remove_partition(current.store, current.key("predictions"))
        warehouse.replace_predictions(engine, model, current.day, [])
        return {"dt": current.dt, "skipped": "no champion yet: nothing scored", "rows": {}}
    scorers = [Scorer(registry.CHAMPION, champion.version, registry.load_model(current.settings, champion))]
    challenger = registry.alias_version(current.settings, model, registry.CHALLENGER)
    if challenger is not None and challenger.version != champion.version:
        scorers.append(
            Scorer(registry.CHALLENGER, challenger.version, registry.load_model(current.settings, challenger))
        )
    written = score_partition(current.store, current.spec, current.dt, scorers, run.run_id, chunk_rows)

    def rows() -> Any:
        for chunk in iter_predictions(current.store, current.spec, current.dt):
            for record in chunk.to_dict("records"):
                yield {**record, "dt": current.day}

    loaded = warehouse.replace_predictions(engine, model, current.day, rows())
    return {
        "dt": current.dt,
        "address": written["address"],
        "rows": written["rows"],
        "loaded": loaded,
        "versions": {scorer.alias: scorer.version for scorer in scorers},
    }


def ingest_labels(model: str, day: str, run: RunInfo) -> dict[str, Any]:
    """Curate the label drop that landed on this date; bad label rows go to quarantine with reasons."""
    from nightshift.ingest import frame_to_csv_bytes, labels_prefix, read_labels

    current = night(model, day)
    found = read_labels(current.store, current.spec, current.dt)
    if found is None:
        return {"dt": current.dt, "labels": 0, "rejected": 0, "note": "no label drop landed on this date"}
    accepted, rejected = found
    prefix = f"curated/{model}/labels/dt={current.dt}"
    with partition_writer(current.store, prefix, {"model": model, "dt": current.dt, "rows": len(accepted)}) as folder:
        accepted.to_parquet(folder / "labels.parquet", index=False)
    quarantine = f"quarantine/{model}/labels/dt={current.dt}"
    with partition_writer(
        current.store, quarantine, {"model": model, "dt": current.dt, "rows": len(rejected)}
    ) as folder:
        (folder / "rejected.csv").write_bytes(frame_to_csv_bytes(rejected))
    return {
        "dt": current.dt,
        "source": current.store.url_for(labels_prefix(current.spec, current.dt)),
        "labels": len(accepted),
        "rejected": len(rejected),
    }


def report_prefix(model: str) -> str:
    return f"reports/drift/{model}"


def drift(model: str, day: str, run: RunInfo) -> dict[str, Any]:
    """Measure tonight against the champion's reference sample; write the reports and refresh the index."""
    from nightshift import registry, warehouse
    from nightshift.drift import compute_drift
    from nightshift.score import champion_scores
    from nightshift.train import curated_features

    current = night(model, day)
    champion = registry.alias_version(current.settings, model, registry.CHAMPION)
    prefix = f"{report_prefix(model)}/dt={current.dt}"
    if champion is None:
        skipped = {"model": model, "dt": current.dt, "skipped": "no champion yet", "run_id": run.run_id}
        with partition_writer(current.store, prefix, {"model": model, "dt": current.dt}) as folder:
            (folder / "summary.json").write_text(json.dumps(skipped, indent=2, sort_keys=True))
        refresh_index(current.store, model)
        return {"dt": current.dt, "skipped": "no champion yet: no reference to compare with"}
    reference = registry.load_reference(current.settings, champion)
    features = curated_features(current.store, current.spec, current.day)
    if features is None:
        raise FileNotFoundError(f"{current.store.url_for(current.key('curated'))}: no curated partition to measure")
    scores = champion_scores(current.store, current.spec, current.dt).rename(
        columns={"entity_id": current.spec.entity_id}
    )
    if len(scores):
        features = features.merge(scores, on=current.spec.entity_id, how="left")
    result = compute_drift(
        reference, features, current.spec, model=model, dt=current.dt, model_version=champion.version
    )
    summary = {**result.summary, "run_id": run.run_id, "run_type": run.run_type}
    with partition_writer(current.store, prefix, {"model": model, "dt": current.dt}) as folder:
        (folder / "report.html").write_text(result.html)
        (folder / "report.json").write_text(result.report_json)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    refresh_index(current.store, model)

    report_uri = current.store.url_for(f"{prefix}/report.html")
    engine = _warehouse(current.settings)
    warehouse.record_drift(
        engine,
        {
            "model": model,
            "dt": current.day,
            "model_version": champion.version,
            "drift_share": float(summary["drift_share"]),
            "dataset_drift": bool(summary["dataset_drift"]),
            "drifted_features": json.dumps(summary["drifted_features"]),
            "critical_drifted": json.dumps(summary["critical_drifted"]),
            "prediction_drifted": bool(summary["prediction"]["drifted"]) if summary.get("prediction") else None,
            "report_uri": report_uri,
            "run_id": run.run_id,
        },
        [
            {
                "model": model,
                "dt": current.day,
                "feature": item["feature"],
                "method": item["method"],
                "threshold": float(item["threshold"]),
                "score": None if item["score"] is None else float(item["score"]),
                "drifted": bool(item["drifted"]),
                "critical": bool(item["critical"]),
                "model_version": champion.version,
            }
            for item in summary["features"]
        ],
    )
    return {
        "dt": current.dt,
        "report": report_uri,
        "summary": current.store.url_for(f"{prefix}/summary.json"),
        "summary_key": f"{prefix}/summary.json",
        "model_version": champion.version,
        "drift_share": summary["drift_share"],
        "dataset_drift": summary["dataset_drift"],
        "drifted_features": summary["drifted_features"],
    }


def refresh_index(store: ObjectStore, model: str) -> None:
    """Rebuild index.html and latest.json from every complete night's summary."""
    from nightshift.drift import latest_pointer, render_index

    base = report_prefix(model)
    summaries = []
    for key in store.list(base):
        if key.endswith("/summary.json") and is_complete(store, key.rsplit("/", 1)[0]):
            night_dir = key.rsplit("/", 2)[-2]
            summary = read_json(store, key)
            if not summary.get("skipped"):
                summary["report_html"] = f"{night_dir}/report.html"
                summary["report_json"] = f"{night_dir}/report.json"
            summaries.append(summary)
    summaries.sort(key=lambda item: item["dt"])
    store.write_bytes(f"{base}/index.html", render_index(summaries, model).encode())
    store.write_bytes(f"{base}/latest.json", json.dumps(latest_pointer(summaries, model), indent=2).encode())


def labelled_day_count(store: ObjectStore, spec: ModelSpec, day: dt.date) -> int:
    """Feature dates in the training window whose curated rows and labels have both arrived by `day`."""
    delay = spec.target.label_delay_days
    count = 0
    for offset in range(spec.training.window_days):
        feature_day = day - dt.timedelta(days=offset)
        label_day = feature_day + dt.timedelta(days=delay)
        if label_day > day:
            continue
        if is_complete(store, partition_key("curated", spec.name, feature_day.isoformat())) and is_complete(
            store, f"curated/{spec.name}/labels/dt={label_day.isoformat()}"
        ):
            count += 1
    return count


def decide(model: str, day: str, run: RunInfo, drift_result: dict[str, Any] | None) -> dict[str, Any]:
    """Decide, record and return whether tonight requests a retrain, with the reasons for the asset event."""
    from nightshift import registry, warehouse
    from nightshift.policy import decide_retrain

    current = night(model, day)
    spec = current.spec
    engine = _warehouse(current.settings)
    champion = registry.alias_version(current.settings, model, registry.CHAMPION)
    window_start = current.day - dt.timedelta(days=spec.drift.window_nights - 1)
    history = [
        {**row, "critical_drifted": json.loads(row["critical_drifted"])}
        for row in warehouse.drift_history(engine, model, window_start, current.day)
    ]
    tonight = None
    if drift_result and "summary_key" in drift_result:
        tonight = read_json(current.store, drift_result["summary_key"])
    decision = decide_retrain(
        spec,
        current.day,
        has_champion=champion is not None,
        labelled_days=labelled_day_count(current.store, spec, current.day),
        history=history,
        tonight=tonight,
        last_request=warehouse.last_requested(engine, model, current.day),
        is_backfill=run.is_backfill,
    )
    report = (drift_result or {}).get("report")
    warehouse.record_retrain_decision(
        engine,
        {
            "model": model,
            "dt": current.day,
            "requested": decision.requested,
            "decision": decision.decision,
            "reasons": json.dumps(decision.reasons),
            "report_uri": report,
            "run_id": run.run_id,
            "run_type": run.run_type,
        },
    )
    return {
        "model": model,
        "dt": current.dt,
        **decision.as_dict(),
        "report": report,
        "champion_version": champion.version if champion else None,
    }

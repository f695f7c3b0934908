"""The performance stage's task: each scored night's realized performance once its labels arrive (recomputed as late
labels come), its estimate from the night it is scored, the verdict of the performance rule's metric, a page per
night and the warehouse's rows."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.runs import RunInfo
from nightshift.stages.night import Night, night, open_warehouse
from nightshift.stages.performance.judge import Judgement, is_concept_drift, judge_night
from nightshift.stores.objects import (
    is_complete,
    partition_file,
    partition_files,
    partition_key,
    partition_url,
    partition_writer,
    read_manifest,
)

if TYPE_CHECKING:
    import pandas as pd

    from nightshift.config import ModelSpec


def performance_prefix(model: str, day: str) -> str:
    return f"reports/performance/{model}/dt={day}"


def nights_to_measure(spec: ModelSpec, day: dt.date) -> list[dt.date]:
    """The nights whose labels may arrive on `day` (label delay, then `late_label_days` more), and `day` itself."""
    delay, late = spec.target.label_delay_days, spec.performance.late_label_days
    earliest = day - dt.timedelta(days=delay + late)
    latest = day - dt.timedelta(days=delay)
    found = [earliest + dt.timedelta(days=offset) for offset in range((latest - earliest).days + 1)]
    return sorted({*found, day})


def performance(model: str, day: str, run: RunInfo, scored_late: list[str] | None = None) -> dict[str, Any]:
    """Measure every night that has predictions and new labels (or no figures yet) among `nights_to_measure` and the
    nights the scoring backlog scored in this run (`scored_late`, however old).

    A night already measured with labels through a later date than this run's (a rerun of an older date) keeps its
    figures, and so does a night with no label drop since it was last measured, as long as the versions that scored it
    are the ones measured (a rerun that re-scored a night with another champion re-measures it).
    """
    from nightshift.stages.drift.tasks import refresh_index
    from nightshift.stores import warehouse

    current = night(model, day)
    engine = open_warehouse(current.settings)
    measured = []
    late = {dt.date.fromisoformat(night) for night in scored_late or []}
    for when in sorted({*nights_to_measure(current.spec, current.day), *late}):
        target = Night(current.spec, when, current.settings, current.store)
        manifest = read_manifest(current.store, target.key("predictions"))
        if manifest is None:
            continue
        stored = warehouse.performance_history(engine, model, when, when, alias=None)
        if _still_current(target, stored, manifest, current.day):
            continue
        measured.append(measure_night(target, current.day, run, engine))
    if measured:
        refresh_index(current.store, model)
    return {"dt": current.dt, "measured": measured}


def _still_current(target: Night, stored: list[dict[str, Any]], manifest: dict[str, Any], day: dt.date) -> bool:
    """Whether the night's stored figures stand for a run of `day`: the same versions' predictions, and no newer
    labels for it (measured with later labels than `day`'s, or no label drop landed since)."""
    if not stored:
        return False
    versions = {alias: str(version) for alias, version in (manifest.get("versions") or {}).items() if version}
    if versions != {row["alias"]: row["model_version"] for row in stored}:
        return False
    through = max(row["labels_through"] for row in stored)
    return bool(through > day or not _labels_since(target, through, day))


def _labels_since(target: Night, after: dt.date, through: dt.date) -> bool:
    """Whether a label partition landed after `after`, up to `through`, that may hold the night's labels."""
    from nightshift.stages.labels.parse import curated_labels_prefix

    days = (through - after).days
    return any(
        is_complete(target.store, curated_labels_prefix(target.spec, (after + dt.timedelta(days=n)).isoformat()))
        for n in range(1, days + 1)
    )


def measure_night(target: Night, as_of: dt.date, run: RunInfo, engine: Any) -> dict[str, Any]:
    """Realized and estimated performance of each alias that scored `target`, with the labels arrived by `as_of`."""
    from nightshift.stores import warehouse

    spec, model = target.spec, target.spec.name
    versions = (read_manifest(target.store, target.key("predictions")) or {}).get("versions") or {}
    labels = labels_through(target, as_of)
    slices = slice_values(target)
    drift_row = next(iter(warehouse.drift_history(engine, model, target.day, target.day)), None)
    aliases = {
        alias: _measure_alias(target, alias, str(version), labels, slices, drift_row)
        for alias, version in sorted(versions.items())
        if version is not None
    }
    prefix = performance_prefix(model, target.dt)
    document = {
        "model": model,
        "dt": target.dt,
        "task": spec.task,
        "metric": spec.performance_metric,
        "labels_through": as_of.isoformat(),
        "label_delay_days": spec.target.label_delay_days,
        "aliases": {alias: found["document"] for alias, found in aliases.items()},
        "run_id": run.run_id,
        "run_type": run.run_type,
    }
    _publish(target, prefix, document, run)
    page = partition_url(target.store, prefix, "performance.html")
    nights = [{**found["night"], "page_uri": page, "run_id": run.run_id} for found in aliases.values()]
    metrics = [{**row, "run_id": run.run_id} for found in aliases.values() for row in found["metrics"]]
    warehouse.record_performance(engine, model, target.day, nights, metrics)
    champion = aliases.get("champion", {}).get("document") or {}
    return {"dt": target.dt, "page": page, **(champion.get("judgement") or {})}


def _measure_alias(
    target: Night,
    alias: str,
    version: str,
    labels: pd.DataFrame,
    slices: pd.DataFrame | None,
    drift_row: dict[str, Any] | None,
) -> dict[str, Any]:
    """One alias's figures of the night: its document section, its `performance_nights` row and metric rows."""
    from nightshift.kinds import kind_of
    from nightshift.stages.drift.verdict import night_drifted
    from nightshift.stages.performance.realized import realized_metrics
    from nightshift.stores import registry

    spec = target.spec
    kind = kind_of(spec)
    predictions = alias_predictions(target, alias)
    realized = realized_metrics(spec, predictions, labels, slices)
    info = registry.get_version(target.settings, spec.name, version)
    estimated = _estimate(target, info, kind.stored_outputs(predictions, spec)) if len(predictions) else None
    reference = registry.holdout_metrics(target.settings, info)
    metric = spec.performance_metric
    overall = {row["metric"]: row for row in realized if row["slice"] == ""}
    headline = overall.get(metric) or {"value": None, "rows": len(predictions), "labelled_rows": 0, "coverage": 0.0}
    guess = (estimated or {}).get(metric) or {}
    judgement = judge_night(
        spec.performance,
        metric,
        reference.get(metric),
        headline["value"],
        headline["coverage"],
        headline["labelled_rows"],
        guess.get("value"),
    )
    drifted = drift_row is not None and night_drifted(
        {**drift_row, "critical_drifted": json.loads(drift_row["critical_drifted"])}
    )
    concept = alias == "champion" and is_concept_drift(judgement, drift_row, drifted)
    through = labels.attrs["through"]
    return {
        "document": _alias_document(version, realized, estimated, reference, judgement, concept, headline),
        "night": {
            **_night_row(target, alias, version, headline, through),
            "reference": reference.get(metric),
            "estimated": guess.get("value"),
            "estimated_lower": guess.get("lower"),
            "estimated_upper": guess.get("upper"),
            "basis": judgement.basis,
            "degraded": judgement.degraded,
            "concept_drift": concept,
        },
        "metrics": _metric_rows(target, alias, version, realized, estimated, headline, through),
    }


def _night_row(target: Night, alias: str, version: str, headline: dict[str, Any], through: dt.date) -> dict[str, Any]:
    """The `performance_nights` columns that say which night, alias and labels: the rest is the judgement's."""
    return {
        "model": target.spec.name,
        "dt": target.day,
        "alias": alias,
        "model_version": version,
        "rows": int(headline["rows"]),
        "labelled_rows": int(headline["labelled_rows"]),
        "coverage": float(headline["coverage"]),
        "labels_through": through,
        "metric": target.spec.performance_metric,
        "realized": headline["value"],
    }


def _alias_document(
    version: str,
    realized: list[dict[str, Any]],
    estimated: dict[str, dict[str, Any]] | None,
    reference: dict[str, float],
    judgement: Judgement,
    concept: bool,
    headline: dict[str, Any],
) -> dict[str, Any]:
    """One alias's section of the night's performance.json."""
    slices: dict[str, dict[str, Any]] = {}
    for row in realized:
        if row["slice"]:
            entry = slices.setdefault(
                row["slice"], {"rows": row["rows"], "labelled_rows": row["labelled_rows"], "metrics": {}}
            )
            entry["metrics"][row["metric"]] = row["value"]
    return {
        "model_version": version,
        "rows": int(headline["rows"]),
        "labelled_rows": int(headline["labelled_rows"]),
        "coverage": float(headline["coverage"]),
        "reference": reference,
        "realized": {row["metric"]: row["value"] for row in realized if row["slice"] == ""},
        "estimated": estimated,
        "slices": slices,
        "judgement": {
            "basis": judgement.basis,
            "value": judgement.value,
            "degraded": judgement.degraded,
            "reason": judgement.reason,
            "concept_drift": concept,
        },
    }


def _metric_rows(
    target: Night,
    alias: str,
    version: str,
    realized: list[dict[str, Any]],
    estimated: dict[str, dict[str, Any]] | None,
    headline: dict[str, Any],
    through: dt.date,
) -> list[dict[str, Any]]:
    """The night's `performance_metrics` rows of one alias: every realized metric per slice, every estimate."""
    from nightshift.stores.warehouse import ESTIMATED, REALIZED

    base = {"model": target.spec.name, "dt": target.day, "alias": alias, "model_version": version}
    rows = [
        {
            **base,
            "kind": REALIZED,
            "slice": row["slice"],
            "metric": row["metric"],
            "value": row["value"],
            "lower": None,
            "upper": None,
            "rows": int(row["rows"]),
            "labelled_rows": int(row["labelled_rows"]),
            "coverage": float(row["coverage"]),
            "labels_through": through,
        }
        for row in realized
    ]
    for name, figure in (estimated or {}).items():
        rows.append(
            {
                **base,
                "kind": ESTIMATED,
                "slice": "",
                "metric": name,
                "value": figure.get("value"),
                "lower": figure.get("lower"),
                "upper": figure.get("upper"),
                "rows": int(headline["rows"]),
                "labelled_rows": int(headline["labelled_rows"]),
                "coverage": float(headline["coverage"]),
                "labels_through": through,
            }
        )
    return rows


def _estimate(target: Night, info: Any, outputs: Any) -> dict[str, dict[str, Any]] | None:
    """The CBPE estimate of every live metric, calibrated on the version's holdout; None when the kind is not
    estimable or the version carries no calibration set."""
    from nightshift.kinds import kind_of
    from nightshift.stages.performance.estimate import estimate_metrics
    from nightshift.stores import registry

    kind, policy = kind_of(target.spec), target.spec.performance
    if not kind.estimable:
        return None
    frame = registry.load_calibration(target.settings, info)
    if frame is None:
        return None
    return estimate_metrics(
        target.spec,
        frame,
        outputs,
        simulations=policy.simulations,
        seed=policy.seed,
        sample_size=policy.sample_size,
    )


def labels_through(target: Night, as_of: dt.date) -> pd.DataFrame:
    """The labels of any entity that arrived from the night's date through `as_of` (entity_id, label), the latest
    arrival of an entity winning; `attrs['through']` is `as_of`."""
    import pandas as pd

    from nightshift.stages.labels.parse import curated_labels_prefix

    spec = target.spec
    frames = []
    for offset in range((as_of - target.day).days + 1):
        prefix = curated_labels_prefix(spec, (target.day + dt.timedelta(days=offset)).isoformat())
        frame = _read_parquet(target, prefix, [spec.entity_id, spec.target.column])
        if frame is not None:
            frames.append(frame.rename(columns={spec.entity_id: "entity_id", spec.target.column: "label"}))
    labels = (
        pd.concat(frames, ignore_index=True).drop_duplicates("entity_id", keep="last")
        if frames
        else pd.DataFrame({"entity_id": pd.Series(dtype=str), "label": pd.Series(dtype=object)})
    )
    labels["entity_id"] = labels["entity_id"].astype(str)
    labels.attrs["through"] = as_of
    return labels


def slice_values(target: Night) -> pd.DataFrame | None:
    """The night's curated entity ids and spec slice columns (as text), or None when the spec has no slices."""
    spec = target.spec
    columns = sorted({slice_.column for slice_ in spec.promotion.slices})
    if not columns:
        return None
    frame = _read_parquet(target, partition_key("curated", spec.name, target.dt), [spec.entity_id, *columns])
    if frame is None:
        return None
    frame = frame.rename(columns={spec.entity_id: "entity_id"})
    return frame.astype({name: str for name in ["entity_id", *columns]})


def alias_predictions(target: Night, alias: str) -> pd.DataFrame:
    """One alias's predictions of the night: entity_id and the kind's prediction columns."""
    import pandas as pd
    import pyarrow.parquet as pq

    from nightshift.kinds import kind_of

    columns = ["entity_id", "score", *kind_of(target.spec).extra_columns]
    keys = [
        key
        for key in partition_files(target.store, target.key("predictions"), ".parquet")
        if Path(key).name.startswith(f"{alias}-")
    ]
    frames = []
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        for key in keys:
            path = target.store.get_file(key, Path(tmp) / Path(key).name)
            frames.append(pq.read_table(path, columns=columns).to_pandas())
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    return pd.concat(frames, ignore_index=True).astype({"entity_id": str})


def _read_parquet(target: Night, prefix: str, columns: list[str]) -> pd.DataFrame | None:
    import pandas as pd
    import pyarrow.parquet as pq

    keys = partition_files(target.store, prefix, ".parquet")
    if not keys:
        return None
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        frames = [
            pq.read_table(target.store.get_file(key, Path(tmp) / Path(key).name), columns=columns).to_pandas()
            for key in keys
        ]
    return pd.concat(frames, ignore_index=True)


def _publish(target: Night, prefix: str, document: dict[str, Any], run: RunInfo) -> None:
    """Write the night's performance.json and its page as a new revision of the night's performance report."""
    from nightshift.pages.performance import performance_page

    manifest = {"model": target.spec.name, "dt": target.dt, "run_id": run.run_id}
    with partition_writer(target.store, prefix, manifest) as folder:
        (folder / "performance.json").write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
        (folder / "performance.html").write_text(performance_page(document))


def performance_document(target: Night) -> dict[str, Any] | None:
    """The night's latest performance.json, or None before its first measurement."""
    prefix = performance_prefix(target.spec.name, target.dt)
    if read_manifest(target.store, prefix) is None:
        return None
    return json.loads(target.store.read_bytes(partition_file(target.store, prefix, "performance.json")))

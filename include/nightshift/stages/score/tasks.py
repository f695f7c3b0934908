"""The scoring stage's tasks: fix the night's model versions, score each curated file (mapped), publish and load.

Each writes through the configured stores, replaces the night's predictions whole, and is safe to rerun.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.config import Settings
from nightshift.runs import RunInfo
from nightshift.stages.night import Night, night, open_warehouse, staging_prefix
from nightshift.stores.objects import fault_point, publish_partition, remove_partition

if TYPE_CHECKING:
    from nightshift.stores.registry import VersionInfo


def serving_models(config: Settings, model: str) -> dict[str, VersionInfo] | None:
    """The versions a night is scored with now: the champion (and the challenger, in shadow); None without one."""
    from nightshift.stores import registry

    champion = registry.alias_version(config, model, registry.CHAMPION)
    if champion is None:
        return None
    found = {registry.CHAMPION: champion}
    challenger = registry.alias_version(config, model, registry.CHALLENGER)
    if challenger is not None and challenger.version != champion.version:
        found[registry.CHALLENGER] = challenger
    return found


def scoring_plan(model: str, day: str, run: RunInfo) -> list[dict[str, Any]]:
    """One part per curated file, each carrying the model versions to use, resolved once for the whole night.

    With no champion yet, a single part that says so: `commit_scores` clears the night's predictions and records
    it in the warehouse's scoring backlog (see `nightshift.stages.backlog`).
    """
    from nightshift.stages.backlog import NO_CHAMPION

    current = night(model, day)
    found = serving_models(current.settings, model)
    if found is None:
        return [{"dt": current.dt, "index": 0, "key": None, "versions": {}, "skipped": NO_CHAMPION}]
    return plan_scoring(current, {alias: info.version for alias, info in found.items()}, found)


def plan_scoring(
    current: Night, versions: dict[str, str], models: dict[str, VersionInfo] | None = None
) -> list[dict[str, Any]]:
    """The parts `score_part` fans out over: one per curated file of the night, each carrying `versions` (and, when
    `models` is given, each version's MLflow run, so `score_part` finds the model in its local cache unasked)."""
    from nightshift.stages.score.predict import curated_keys

    keys = curated_keys(current.store, current.spec, current.dt)
    runs = {alias: info.run_id for alias, info in (models or {}).items() if info.version == versions.get(alias)}
    extra = {"runs": runs} if runs else {}
    return [
        {"dt": current.dt, "index": index, "key": key, "versions": versions, **extra} for index, key in enumerate(keys)
    ]


def _serving_model(config: Settings, model: str, alias: str, version: str, part: dict[str, Any]) -> Any:
    """A part's model for an alias: from the local model cache when the plan named its run, else via the registry."""
    from nightshift.stores import registry

    run_id = (part.get("runs") or {}).get(alias)
    info = (
        registry.VersionInfo(model, version, str(run_id), {})
        if run_id
        else registry.get_version(config, model, version)
    )
    return registry.load_model(config, info)


def score_part(model: str, day: str, part: dict[str, Any], run: RunInfo, chunk_rows: int = 200_000) -> dict[str, Any]:
    """Score one curated file with the plan's versions, in chunks; stage one Parquet file per alias."""
    from nightshift.stages.score.predict import Scorer, iter_scoring_batches, score_batches

    current = night(model, day)
    index = int(part["index"])
    if part.get("skipped"):
        return {"dt": current.dt, "index": index, "skipped": part["skipped"], "staged": {}, "rows": {}}
    scorers = [
        Scorer(alias, version, _serving_model(current.settings, model, alias, version, part))
        for alias, version in part["versions"].items()
    ]
    staged_prefix = f"{staging_prefix(current, run)}/score/part-{index:05d}"
    staged: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        paths = {scorer.alias: Path(tmp) / f"{scorer.alias}-{index:05d}.parquet" for scorer in scorers}
        counts = score_batches(
            iter_scoring_batches(current.store, current.spec, [part["key"]], chunk_rows),
            current.spec,
            current.dt,
            scorers,
            run.run_id,
            paths,
        )
        for path in paths.values():
            staged[path.name] = f"{staged_prefix}/{path.name}"
            current.store.put_file(staged[path.name], path)
    return {"dt": current.dt, "index": index, "staged": staged, "rows": counts, "versions": part["versions"]}


def commit_scores(model: str, day: str, parts: list[dict[str, Any]], run: RunInfo) -> dict[str, Any]:
    """Publish the night's predictions partition from the scored parts and load them into the warehouse.

    A skipped plan (no champion) clears the night's predictions and records the night as unscored, with the reason
    and the command that scores it, in the warehouse's `scoring_backlog`.
    """
    from nightshift.stages.backlog import command
    from nightshift.stages.score.predict import iter_predictions
    from nightshift.stores import warehouse

    current = night(model, day)
    engine = open_warehouse(current.settings)
    prefix = current.key("predictions")
    skipped = next((part["skipped"] for part in parts if part.get("skipped")), None)
    if skipped:
        remove_partition(current.store, prefix)
        warehouse.replace_predictions(engine, model, current.day, [])
        row = {"model": model, "dt": current.day, "reason": skipped, "command": command(model), "run_id": run.run_id}
        warehouse.record_unscored(engine, row)
        return {"dt": current.dt, "skipped": skipped, "rows": {}, "command": row["command"]}
    versions = parts[0]["versions"] if parts else {}
    counts: dict[str, int] = {alias: 0 for alias in versions}
    for part in parts:
        for alias, scored in part["rows"].items():
            counts[alias] += int(scored)
    staged = {name: key for part in parts for name, key in part["staged"].items()}
    manifest = {"model": model, "dt": current.dt, "run_id": run.run_id, "versions": versions, "rows": counts}
    publish_partition(current.store, prefix, manifest, staged=staged)
    fault_point("warehouse", prefix)
    loaded = warehouse.load_predictions(
        engine, model, current.day, iter_predictions(current.store, current.spec, current.dt)
    )
    current.store.delete_prefix(f"{staging_prefix(current, run)}/score")
    return {
        "dt": current.dt,
        "address": current.store.url_for(prefix),
        "rows": counts,
        "loaded": loaded,
        "versions": versions,
        "parts": len(parts),
    }


def score(model: str, day: str, run: RunInfo, chunk_rows: int = 200_000) -> dict[str, Any]:
    """The whole scoring stage in one process: plan, every part in turn, then the commit."""
    parts = scoring_plan(model, day, run)
    return commit_scores(model, day, [score_part(model, day, part, run, chunk_rows) for part in parts], run)

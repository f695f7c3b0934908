"""Nights left without predictions, and scoring them once a champion exists.

A night whose scoring finds no champion is recorded in the warehouse's `scoring_backlog` (reason, command, run) by
`score.tasks.commit_scores`, and its drift summary says the same, so the index, `latest.json` and the season summary
show it. `score_backlog` scores every such night up to a date with the serving champion (through the same
`plan_scoring`, `score_part` and `commit_scores` as a normal night, so the prediction ids are a normal night's),
re-measures its drift against that champion with `drift.tasks.drift`, which marks the row scored. The nightly DAG runs
it in `score_backlog` for its logical date; `nightshift score-backlog --model M` runs it by hand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nightshift.config import settings
from nightshift.runs import RunInfo
from nightshift.stages.drift.tasks import drift
from nightshift.stages.night import night
from nightshift.stages.score.tasks import commit_scores, plan_scoring, score_part, serving_models
from nightshift.stores.objects import is_complete

NO_CHAMPION = "no champion yet: nothing scored"
WHEN = "the first nightly run that finds a champion scores it (its score_backlog task)"
CLI_RUN = RunInfo(run_id="cli__score_backlog", run_type="manual", actor="cli")


def command(model: str) -> str:
    """The command that scores a model's unscored nights by hand."""
    return f"nightshift score-backlog --model {model}"


def score_backlog(model: str, through: str | None, run: RunInfo, chunk_rows: int = 200_000) -> dict[str, Any]:
    """Score every unscored night up to `through` (all when None) with the serving champion; re-measure their drift.

    The versions are fixed once for the whole backlog. A night whose curated partition is missing stays in the
    backlog and is listed under `waiting`. Idempotent: a rerun finds the nights already scored and does nothing.
    Returns a small dict (dates and counts) for XCom.
    """
    from nightshift.stores import warehouse

    until = None if through is None else dt.date.fromisoformat(through)
    engine = warehouse.connect(settings().warehouse_url)
    pending = warehouse.backlog(engine, model, warehouse.UNSCORED, through=until)
    outcome: dict[str, Any] = {"dt": through, "scored": [], "waiting": [], "rows": {}, "versions": {}}
    if not pending:
        return {**outcome, "note": "no unscored nights"}
    current = night(model, pending[0]["dt"])
    models = serving_models(current.settings, model)
    if models is None:
        waiting = [row["dt"].isoformat() for row in pending]
        return {**outcome, "waiting": waiting, "note": f"{len(waiting)} night(s) wait for a first champion"}
    versions = {alias: info.version for alias, info in models.items()}
    outcome["versions"] = versions
    for row in pending:
        day = row["dt"].isoformat()
        current = night(model, day)
        if not is_complete(current.store, current.key("curated")):
            outcome["waiting"].append(day)
            continue
        parts = [score_part(model, day, part, run, chunk_rows) for part in plan_scoring(current, versions, models)]
        committed = commit_scores(model, day, parts, run)
        drift(model, day, run)
        outcome["scored"].append(day)
        for alias, count in committed["rows"].items():
            outcome["rows"][alias] = outcome["rows"].get(alias, 0) + int(count)
    if outcome["waiting"]:
        outcome["note"] = "nights under `waiting` have no curated partition: rerun them, then score the backlog"
    return outcome


def describe(outcome: dict[str, Any]) -> str:
    """One line for a person: what `score_backlog` did."""
    scored, waiting = outcome["scored"], outcome["waiting"]
    text = f"scored {len(scored)} night(s)" + (f" ({', '.join(scored)})" if scored else "")
    if scored:
        rows = ", ".join(f"{alias} {count}" for alias, count in outcome["rows"].items())
        versions = ", ".join(f"{alias} v{version}" for alias, version in outcome["versions"].items())
        text += f" with {versions}: {rows} rows"
    if waiting:
        text += f"; {len(waiting)} still unscored ({', '.join(waiting)})"
    if outcome.get("note"):
        text += f"; {outcome['note']}"
    return text

"""The benchmark's table: each figure with its target, PASS or MISS, its baseline, then the growth table."""

from __future__ import annotations

from typing import Any

from nightshift_dev.bench_plan import (
    figure_keys,
    size_label,
)


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key.startswith("warehouse_rows"):
        return f"{value:,.0f}"
    if "agreement" in key or "ratio" in key:
        return f"{value:.3f}"
    return f"{value:.2f}"


def _baseline(key: str, result: dict[str, Any]) -> str:
    details = result.get("details", {})
    scoring = details.get("scoring", {})
    if key == "scoring_vs_limit_ratio" and "champion" in scoring:
        parts = scoring["champion"]
        note = parts.get("model", {}).get("note")
        return f"stage {parts['stage']['seconds']:.2f}s / predict_proba {parts['limit']['seconds']:.2f}s" + (
            f"; {note}" if note else ""
        )
    kind = key.removeprefix("scoring_vs_limit_ratio_")
    if key.startswith("scoring_vs_limit_ratio_") and kind in scoring:
        parts = scoring[kind]
        call = "predict" if kind == "regression" else "predict_proba"
        detail = parts["stage"].get("model_detail", {})
        model = detail.get("estimator", "?") + (f", {detail['n_iter']} iterations" if detail.get("n_iter") else "")
        return f"stage {parts['stage']['seconds']:.2f}s / {call} {parts['limit']['seconds']:.2f}s; {model}"
    if key == "drift_speedup_vs_full" and "drift" in details:
        full = details["drift"]["full_data"]["seconds"]
        return f"full-data Evidently {full:.1f}s"
    if key == "drift_verdict_agreement" and "drift" in details:
        nights = details["drift"]["nights"]
        shifted = sum(1 for item in nights.values() if item["shifted"])
        return f"{len(nights) - shifted} stable + {shifted} shifted nights"
    if (
        key == "warehouse_speedup_vs_insert"
        and "warehouse" in details
        and "baseline_rows_per_s" in details["warehouse"]
    ):
        return f"executemany {details['warehouse']['baseline_rows_per_s']:,.0f} rows/s"
    return _ratio_baseline(key, details) or _stage_baseline(key, details)


def _ratio_baseline(key: str, details: dict[str, Any]) -> str:
    """What the validation, DAG parse and nightly run ratios were measured against."""
    validation = details.get("validation", {})
    if key == "validation_vs_limit_ratio" and "limit" in validation:
        limit = validation["limit"]
        return (
            f"stage {validation['seconds']:.2f}s / limit {limit['seconds']:.2f}s (read {limit['read_seconds']:.2f} "
            f"+ checks {limit['check_seconds']:.2f} + write {limit['write_seconds']:.2f}); bad rows: "
            f"{validation['quarantined']:,} quarantined, {limit['bad_rows']:,} by the limit"
        )
    if key == "validation_vs_pandera_ratio" and "pandera" in validation:
        peer = validation["pandera"]
        return (
            f"stage {validation['seconds']:.2f}s / pandera {peer['seconds']:.2f}s (read {peer['read_seconds']:.2f} "
            f"+ validate {peer['validate_seconds']:.2f}); {peer['bad_rows']:,} bad rows"
        )
    parse = next((value for name, value in details.items() if name.startswith("dag_parse_") and "specs" in name), None)
    if key.startswith("dag_parse_seconds_max_") and parse:
        medians = parse["median_seconds"]
        slowest = max(medians, key=lambda name: medians[name])
        return f"{parse['specs']} model specs; slowest {slowest}"
    e2e = details.get("nightly_e2e", {})
    if key == "nightly_e2e_vs_stages_ratio" and e2e.get("stages", {}).get("seconds"):
        stages = e2e["stages"]
        listed = " + ".join(f"{name} {value:.1f}" for name, value in stages["parts"].items())
        idle = e2e.get("breakdown", {}).get("idle_seconds")
        return f"e2e {e2e['seconds']:.1f}s / stages {stages['seconds']:.1f}s ({listed})" + (
            f"; no task running {idle:.0f}s" if idle is not None else ""
        )
    return ""


def _stage_baseline(key: str, details: dict[str, Any]) -> str:
    """What a stage's seconds figure was measured on."""
    if key.startswith("drift_seconds") and "drift" in details:
        stage = details["drift"]["stage"]
        sample = stage.get("sample", {})
        return (
            f"sampled {sample.get('current_sampled', 0):,} of {stage['rows']:,} rows, "
            f"reference {sample.get('reference_sampled', 0):,}"
        )
    if key.startswith("validation_seconds") and "validation" in details:
        out = details["validation"]
        return f"{out['rows']:,} rows, {out['quarantined']:,} quarantined, {out.get('files', 1)} file(s)"
    if key == "warehouse_rows_per_s" and "rows" in details.get("warehouse", {}):
        return f"{details['warehouse']['rows']:,} rows"
    if key.startswith("retrain_seconds") and "retrain" in details:
        out = details["retrain"]
        return f"{out['train_rows'] + out['holdout_rows']:,} labelled rows, {out['action']}"
    if key.startswith("nightly_e2e") and "nightly_e2e" in details:
        tasks = details["nightly_e2e"]["tasks"]
        slowest = max(tasks, key=lambda name: tasks[name]["seconds"] or 0.0)
        return f"trigger -> success, LocalExecutor; slowest task {slowest} {tasks[slowest]['seconds'] or 0:.0f}s"
    return ""


def champion_origin(scored: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """Which model the champion's scoring used: the one the measured retrain promoted, or the bootstrap's."""
    version = str(scored["model_version"])
    estimator = scored.get("model_detail", {}).get("estimator", "?")
    retrain = details.get("retrain")
    boot = details.get("bootstrap", {}).get("candidate_version")
    if retrain and retrain.get("action") == "promote" and str(retrain.get("candidate_version")) == version:
        origin = f"promoted by the measured retrain on {retrain['train_rows'] + retrain['holdout_rows']:,} rows"
    elif retrain:
        verb = {"promote": "promoted", "refuse": "refused"}.get(str(retrain.get("action")), retrain.get("action"))
        origin = f"the bootstrap's small model: the measured retrain {verb} v{retrain.get('candidate_version')}"
    else:
        origin = "the bootstrap's small model: the retrain was skipped"
    iterations = scored.get("model_detail", {}).get("n_iter")
    size = f", {iterations} iterations" if iterations else ""
    return {
        "version": version,
        "bootstrap_version": boot,
        "estimator": estimator,
        "note": f"champion v{version} ({estimator}{size}), {origin}",
    }


def skipped_by(key: str, rows: int) -> str:
    """The --skip part that leaves this figure out ('' for figures every run measures)."""
    parts = {
        "scoring_vs_limit_ratio_linear": "linear",
        "scoring_vs_limit_ratio_multiclass": "kinds",
        "scoring_vs_limit_ratio_regression": "kinds",
        "validation_vs_pandera": "pandera",
        "warehouse_": "warehouse",
        "dag_parse_": "dag-parse",
        "nightly_e2e_": "e2e",
        "retrain_": "retrain",
    }
    for prefix, part in parts.items():
        if key.startswith(prefix):
            return part
    if key.startswith("scoring_peak_rss_gib_") and key != f"scoring_peak_rss_gib_{size_label(rows)}":
        return "growth"
    return ""


def format_table(result: dict[str, Any]) -> str:
    """The figures with their targets and PASS/MISS, then the growth table."""
    info = result["machine"]
    lines = [
        f"nightshift bench: {result['model']}, {result['rows']:,} rows per night; growth at "
        f"{', '.join(size_label(size) for size in result['sizes'])}",
        f"machine: {info.get('cpus')} CPUs ({info.get('cpu_model', '?')}), {info.get('memory_gib', '?')} GiB; "
        f"load average {info.get('load_average_start')} at start, {info.get('load_average')} at the end",
        "",
        f"{'figure':<34} {'value':>12} {'target':>11}  {'result':<6}  baseline / note",
    ]
    checks = result["targets"]
    for key in figure_keys(result["rows"], tuple(result["sizes"])):
        value = result.get(key)
        check = checks.get(key)
        target = check["target"] if check else ""
        if value is None:
            verdict = "SKIP" if skipped_by(key, result["rows"]) in result["skipped"] else "ERROR"
        else:
            verdict = "info" if check is None else ("PASS" if check["pass"] else "MISS")
        lines.append(f"{key:<34} {_fmt(key, value):>12} {target:>11}  {verdict:<6}  {_baseline(key, result)}")
    growth = result.get("growth") or []
    if growth:
        first = growth[0]["label"]
        lines += [
            "",
            f"growth (seconds, peak RSS GiB; per-row time and memory relative to {first})",
            f"{'rows':>8}  " + "  ".join(f"{stage:^31}" for stage in ("validation", "scoring", "drift")),
        ]
        for entry in growth:
            cells = []
            for stage in ("validation", "scoring", "drift"):
                item = entry[stage]
                cells.append(
                    f"{item['seconds']:7.2f}s {item['peak_rss_gib']:5.2f}G "
                    f"x{item['time_per_row_vs_first']:5.2f}/row x{item['memory_vs_first']:4.2f}m"
                )
            lines.append(f"{entry['label']:>8}  " + "  ".join(cells))
    if result.get("errors"):
        lines += ["", "errors:"] + [f"  {name}: {text.splitlines()[0]}" for name, text in result["errors"].items()]
    lines.append(f"\nfinished in {result['seconds']:.0f}s")
    return "\n".join(lines)

"""`make bench`: the nightly run's stages measured against their limits, each stage in a fresh process.

The parent process (`nightshift bench`) generates data with the simulator into a workspace of its own under
`$NIGHTSHIFT_HOME/bench/` (generated nights are cached per size, so a rerun skips generation), then runs every
measured stage as `python -m nightshift_dev.bench stage <name> <json args>`: a fresh interpreter whose peak resident
memory (`ru_maxrss`) belongs to that stage alone. Baselines (raw `predict_proba`, Evidently on the full data,
row-wise INSERT) are measured in the same run. Results go to a JSON file (one key per figure) and a table.

The parent's run order and figures are here; the children's stages (every call into nightshift's own stages) in
`bench_stages`, the workspace in `bench_workspace`, the keys and targets in `bench_plan`, the table in `bench_report`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nightshift.config import PROJECT_ROOT
from nightshift_dev.bench_children import run_stage
from nightshift_dev.bench_plan import (
    DEFAULT_ROWS,
    DEFAULT_SIZES,
    MODEL,
    POSTGRES_ADMIN_URL,
    SEED,
    SHIFT_NIGHT,
    SKIPPABLE,
    SPEC_COUNT,
    TRAIN_NIGHTS,
    BenchError,
    DataSet,
    Options,
    figure_keys,
    label_dates,
    machine,
    meets,
    night,
    size_label,
    targets,
    train_as_of,
)
from nightshift_dev.bench_report import champion_origin, format_table
from nightshift_dev.bench_stages import KINDS, product_dag_parse, product_nightly_e2e
from nightshift_dev.bench_workspace import Workspace

__all__ = [
    "DEFAULT_ROWS",
    "DEFAULT_SIZES",
    "MODEL",
    "PROJECT_ROOT",
    "SHIFT_NIGHT",
    "Bench",
    "DataSet",
    "Options",
    "Path",
    "add_arguments",
    "figure_keys",
    "format_table",
    "machine",
    "main",
    "night",
    "run_from_args",
    "size_label",
    "targets",
]


class Bench(Workspace):
    """One benchmark run: the parts in their order, the figures they measure, the result."""

    def __init__(self, options: Options, log: Callable[[str], None] = print) -> None:
        super().__init__(options, log)
        self.errors: dict[str, str] = {}
        self.details: dict[str, Any] = {}
        self.figures: dict[str, float | None] = dict.fromkeys(figure_keys(options.rows, options.sizes))
        self.growth_rows: dict[int, dict[str, dict[str, float]]] = {}

    # -- sections ---------------------------------------------------------------------------------------------

    def section(self, name: str, run: Callable[[], None]) -> None:
        """Run one part of the bench; a failure is recorded and reported, and the rest still runs."""
        try:
            run()
        except (BenchError, OSError, RuntimeError, ValueError, KeyError) as exc:
            self.errors[name] = str(exc)
            self.progress(f"{name} FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def run(self) -> dict[str, Any]:
        options = self.options
        sets = self.datasets()
        self.reset_state(list(sets.values()))
        start_machine = machine()
        self.progress(
            f"workspace {self.home}; {options.rows:,} rows per night, growth at "
            f"{', '.join(size_label(size) for size in options.sizes)}; skipping {sorted(options.skip) or 'nothing'}"
        )
        if "dag-parse" not in options.skip:
            self.section("dag_parse", self.measure_dag_parse)
        started = time.monotonic()
        self.section("data", lambda: self.ensure_data(list(sets.values())))
        self.generation["seconds"] = round(time.monotonic() - started, 1)
        self.progress(f"data ready in {self.generation['seconds']:.0f}s (generation is not a figure)")
        if "data" not in self.errors:
            self.section("bootstrap", lambda: self.bootstrap(sets["bootstrap"]))
        if "data" in self.errors or "bootstrap" in self.errors:
            return self.finish(start_machine)
        if "training" in sets:
            self.section("retrain", lambda: self.measure_retrain(sets["training"]))
        self.section("figures", lambda: self.measure_figures(sets["figures"], sets["bootstrap"]))
        if "growth" not in options.skip:
            self.section("growth", lambda: self.measure_growth(sets, sets["bootstrap"]))
        if "warehouse" not in options.skip:
            self.section("warehouse", self.measure_warehouse)
        if "e2e" not in options.skip:
            self.section("e2e", lambda: self.measure_e2e(sets["figures"]))
        return self.finish(start_machine)

    def bootstrap(self, data: DataSet) -> None:
        """A first champion from a small training set, so every later stage has one to load."""
        self.progress("bootstrap: curating a small training set and registering a first champion")
        self.details["bootstrap"] = self.child(
            "retrain",
            {
                "as_of": train_as_of().isoformat(),
                "run_name": "bench-bootstrap",
                "nights": list(data.nights),
                "label_days": label_dates(data.nights),
            },
            self.store(data),
            "the bootstrap champion",
        )

    def measure_retrain(self, data: DataSet) -> None:
        self.progress(
            f"retrain: curating {TRAIN_NIGHTS} nights of {data.rows:,} rows and their labels, then train, "
            "evaluate against the champion and promote"
        )
        out = self.child(
            "retrain",
            {
                "as_of": train_as_of().isoformat(),
                "run_name": "bench-retrain",
                "nights": list(data.nights),
                "label_days": label_dates(data.nights),
            },
            self.store(data),
            "the retrain",
        )
        self.figures[f"retrain_seconds_{size_label(self.options.rows)}"] = round(out["seconds"], 2)
        self.details["retrain"] = out
        self.progress(
            f"retrain: {out['seconds']:.1f}s on {out['train_rows'] + out['holdout_rows']:,} labelled rows "
            f"({', '.join(f'{step} {seconds:.1f}s' for step, seconds in out['steps'].items())}); "
            f"{out['action']} v{out['candidate_version']}"
        )

    def measure_figures(self, data: DataSet, bootstrap: DataSet) -> None:
        """Validation, scoring and drift on night 1 at the bench's size; then drift against the full data."""
        options, store = self.options, self.store(data)
        n1 = night(1)
        boot_uri = self.store(bootstrap).as_uri()
        validated = self.measure_validation(data, store, n1)
        scored = self.measure_scoring(store, n1, boot_uri)
        drift = self.measure_drift(store, n1)
        self.growth_rows = {
            options.rows: {
                "validation": {"seconds": validated["seconds"], "peak_rss_gib": validated["peak_rss_gib"]},
                "scoring": {"seconds": scored["seconds"], "peak_rss_gib": scored["peak_rss_gib"]},
                "drift": {"seconds": drift["seconds"], "peak_rss_gib": drift["peak_rss_gib"]},
            }
        }
        full = self.measure_full_drift(data, store, drift)
        self.measure_drift_agreement(store, drift, full)

    def measure_validation(self, data: DataSet, store: Path, n1: str) -> dict[str, Any]:
        """The validation stage on night 1, then its limit and (unless skipped) the pandera peer on the same drop."""
        label = size_label(self.options.rows)
        self.progress(f"validation: night {n1}, {self.options.rows:,} rows")
        validated = self.child("validate", {"day": n1}, store, f"validation of {n1}")
        self.figures[f"validation_seconds_{label}"] = round(validated["seconds"], 2)
        self.figures[f"validation_peak_rss_gib_{label}"] = validated["peak_rss_gib"]
        details: dict[str, Any] = {**validated, "files": data.files}
        self.details["validation"] = details
        self.progress(f"validation: {validated['seconds']:.1f}s, peak RSS {validated['peak_rss_gib']:.2f} GiB")
        self.progress("validation limit: pyarrow reads the drop typed, vectorised checks, accepted rows to Parquet")
        limit = self.child("validate_limit", {"day": n1}, store, "the validation limit")
        self.figures["validation_vs_limit_ratio"] = round(validated["seconds"] / limit["seconds"], 3)
        details["limit"] = limit
        details["bad_rows"] = {"stage_quarantined": validated["quarantined"], "limit": limit["bad_rows"]}
        self.progress(
            f"validation limit: {limit['seconds']:.1f}s (read {limit['read_seconds']:.1f}s, checks "
            f"{limit['check_seconds']:.1f}s, write {limit['write_seconds']:.1f}s), {limit['bad_rows']:,} bad rows; "
            f"ratio {self.figures['validation_vs_limit_ratio']}"
        )
        if "pandera" not in self.options.skip:
            self.progress("validation peer: pandas reads the drop, pandera validates it (lazy, per-row failure cases)")
            peer = self.child("pandera", {"day": n1}, store, "the pandera peer")
            self.figures["validation_vs_pandera_ratio"] = round(validated["seconds"] / peer["seconds"], 3)
            details["pandera"] = peer
            details["bad_rows"]["pandera"] = peer["bad_rows"]
            self.progress(
                f"validation peer: pandera {peer['seconds']:.1f}s (read {peer['read_seconds']:.1f}s, validate "
                f"{peer['validate_seconds']:.1f}s), {peer['bad_rows']:,} bad rows; "
                f"ratio {self.figures['validation_vs_pandera_ratio']}"
            )
        return validated

    def measure_scoring(self, store: Path, n1: str, boot_uri: str) -> dict[str, Any]:
        """The champion's scoring stage against raw predict_proba; before it (their predictions are replaced by the
        champion's), a linear model's and the other model kinds', unless skipped."""
        scoring: dict[str, Any] = {}
        others = [
            *(["linear"] if "linear" not in self.options.skip else []),
            *(KINDS if "kinds" not in self.options.skip else ()),
        ]
        for kind in others:
            what = "a linear model (LogisticRegression in the same pipeline)" if kind == "linear" else f"a {kind} model"
            self.progress(f"scoring: {what} and its limit")
            out = self.child(
                "score",
                {"day": n1, "model": kind, "bootstrap_store_uri": boot_uri, "with_limit": True},
                store,
                f"{kind} scoring",
            )
            self.figures[f"scoring_vs_limit_ratio_{kind}"] = round(out["limit"]["seconds"] / out["seconds"], 3)
            scoring[kind] = {"stage": out, "limit": out.pop("limit")}
        self.progress("scoring: the champion (the demo spec's HistGradientBoostingClassifier) and its limit")
        limit = self.child(
            "predict", {"day": n1, "model": "champion", "bootstrap_store_uri": boot_uri}, store, "predict_proba limit"
        )
        scored = self.child(
            "score", {"day": n1, "model": "champion", "bootstrap_store_uri": boot_uri}, store, f"scoring of {n1}"
        )
        self.figures["scoring_vs_limit_ratio"] = round(limit["seconds"] / scored["seconds"], 3)
        self.figures[f"scoring_peak_rss_gib_{size_label(self.options.rows)}"] = scored["peak_rss_gib"]
        scoring["champion"] = {"stage": scored, "limit": limit, "model": champion_origin(scored, self.details)}
        self.details["scoring"] = scoring
        self.progress(
            f"scoring: {scored['seconds']:.1f}s vs predict_proba {limit['seconds']:.1f}s "
            f"(ratio {self.figures['scoring_vs_limit_ratio']}), peak RSS {scored['peak_rss_gib']:.2f} GiB; "
            f"{scoring['champion']['model']['note']}"
        )
        return scored

    def measure_drift(self, store: Path, n1: str) -> dict[str, Any]:
        self.progress(f"drift: our stage on {n1}")
        drift = self.child("drift", {"day": n1}, store, f"drift of {n1}")
        self.figures[f"drift_seconds_{size_label(self.options.rows)}"] = round(drift["seconds"], 2)
        self.progress(f"drift: {drift['seconds']:.1f}s, peak RSS {drift['peak_rss_gib']:.2f} GiB")
        return drift

    def measure_full_drift(self, data: DataSet, store: Path, drift: dict[str, Any]) -> dict[str, Any]:
        """Evidently on every row of night 1 against night 2 (the other nights scored first): the stage's speed-up."""
        n1 = night(1)
        others = list(data.nights[1:])
        self.progress(f"drift: validating and scoring the other nights {', '.join(others)} (setup)")
        self.details["other_nights"] = self.child(
            "prepare", {"nights": others, "label_days": [], "score": True}, store, "the other nights"
        )["nights"]
        self.progress(f"drift: Evidently on every row of {n1} against every row of {night(2)}")
        full = self.child("full_drift", {"nights": [n1], "reference_night": night(2)}, store, "full-data drift")
        self.figures["drift_speedup_vs_full"] = round(full["seconds"] / drift["seconds"], 2)
        self.progress(f"drift: full data {full['seconds']:.1f}s, speedup {self.figures['drift_speedup_vs_full']}x")
        return full

    def measure_drift_agreement(self, store: Path, drift: dict[str, Any], full: dict[str, Any]) -> None:
        """How often the sampled stage's per-feature verdicts match Evidently's on the full data, night by night."""
        n1 = night(1)
        ours = {
            n1: {key: drift[key] for key in ("seconds", "verdicts", "prediction_drifted", "rows", "reference_rows")}
        }
        theirs = dict(full["nights"])
        rest = [day for day in self.agreement_nights() if day != n1] if "agreement" not in self.options.skip else []
        if rest:
            self.progress(f"drift agreement: our stage and the full data on {', '.join(rest)}")
            more = self.child(
                "full_drift", {"nights": rest, "reference_night": night(2), "ours": True}, store, "drift agreement"
            )
            theirs.update(more["nights"])
            ours.update(more["ours"])
        pairs = [
            (day, feature, verdict, theirs[day]["verdicts"][feature])
            for day in sorted(ours)
            for feature, verdict in ours[day]["verdicts"].items()
        ]
        self.figures["drift_verdict_agreement"] = round(sum(a == b for *_, a, b in pairs) / len(pairs), 4)
        self.details["drift"] = {
            "stage": drift,
            "full_data": {key: value for key, value in full.items() if key != "nights"},
            "reference_night": night(2),
            "nights": {
                day: {"ours": ours[day], "full_data": theirs[day], "shifted": day >= SHIFT_NIGHT.isoformat()}
                for day in sorted(ours)
            },
            "disagreements": [
                {"night": day, "feature": feature, "ours": a, "full_data": b} for day, feature, a, b in pairs if a != b
            ],
        }
        self.progress(f"drift agreement: {self.figures['drift_verdict_agreement']} over {len(ours)} night(s)")

    def agreement_nights(self) -> list[str]:
        """Stable nights N1, N3 and shifted nights N4, N5, as many as asked (half stable, half shifted)."""
        stable, shifted = [night(1), night(3)], [night(4), night(5)]
        count = max(2, min(4, self.options.agreement_nights))
        return stable[: count - count // 2] + shifted[: count // 2]

    def measure_growth(self, sets: dict[str, DataSet], bootstrap: DataSet) -> None:
        boot_uri = self.store(bootstrap).as_uri()
        for size in self.options.sizes:
            if size == self.options.rows:
                continue
            data = sets[f"growth-{size}"]
            store, day = self.store(data), data.nights[0]
            self.progress(f"growth: {size:,} rows: validation, scoring, drift")
            validated = self.child("validate", {"day": day}, store, f"validation of {size:,} rows")
            scored = self.child(
                "score", {"day": day, "model": "champion", "bootstrap_store_uri": boot_uri}, store, "scoring"
            )
            drift = self.child("drift", {"day": day}, store, f"drift of {size:,} rows")
            self.growth_rows[size] = {
                stage: {"seconds": out["seconds"], "peak_rss_gib": out["peak_rss_gib"]}
                for stage, out in (("validation", validated), ("scoring", scored), ("drift", drift))
            }
            self.figures[f"scoring_peak_rss_gib_{size_label(size)}"] = scored["peak_rss_gib"]
            self.progress(
                f"growth: {size:,} rows: validation {validated['seconds']:.1f}s, scoring {scored['seconds']:.1f}s, "
                f"drift {drift['seconds']:.1f}s; peak RSS {validated['peak_rss_gib']:.2f}, "
                f"{scored['peak_rss_gib']:.2f}, {drift['peak_rss_gib']:.2f} GiB"
            )

    def growth_table(self) -> list[dict[str, Any]]:
        rows = self.growth_rows
        if not rows:
            return []
        first = min(rows)
        table = []
        for size in sorted(rows):
            entry: dict[str, Any] = {"rows": size, "label": size_label(size)}
            for stage, measured in rows[size].items():
                base = rows[first][stage]
                per_row = (measured["seconds"] / size) / (base["seconds"] / first)
                entry[stage] = {
                    "seconds": round(measured["seconds"], 3),
                    "peak_rss_gib": measured["peak_rss_gib"],
                    "time_per_row_vs_first": round(per_row, 3),
                    "memory_vs_first": round(measured["peak_rss_gib"] / base["peak_rss_gib"], 3),
                }
            table.append(entry)
        return table

    def measure_warehouse(self) -> None:
        import sqlalchemy as sa

        rows = self.options.rows
        name = f"nightshift_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError as exc:
            admin.dispose()
            raise BenchError(f"no PostgreSQL for the warehouse figure at {POSTGRES_ADMIN_URL}: {exc}") from None
        url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        try:
            self.progress(f"warehouse: loading {rows:,} predictions into a throwaway Postgres database {name}")
            out = self.child("warehouse", {"url": url, "rows": rows, "seed": SEED}, None, "the warehouse load")
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        self.details["warehouse"] = out
        self.figures["warehouse_rows_per_s"] = round(float(out["rows_per_s"]))
        self.figures["warehouse_speedup_vs_insert"] = round(float(out["speedup"]), 2)
        self.progress(
            f"warehouse: {out['rows_per_s']:,.0f} rows/s, {out['speedup']:.1f}x row-wise INSERT "
            f"({out['baseline_rows_per_s']:,.0f} rows/s)"
        )

    def measure_dag_parse(self) -> None:
        """The slowest DAG file to parse with the project's specs, then with SPEC_COUNT of them."""
        self.progress("DAG files: parse time in fresh interpreters (3 each, median)")
        dag_files = sorted((PROJECT_ROOT / "dags").glob("*.py"))
        timings = {path.name: product_dag_parse(path, repeats=3) for path in dag_files}
        medians = {name: round(statistics.median(values), 4) for name, values in timings.items()}
        self.figures["dag_parse_seconds_max"] = max(medians.values())
        self.details["dag_parse"] = {"median_seconds": medians, "runs": timings}
        self.progress(f"DAG files: slowest {max(medians, key=lambda name: medians[name])} {max(medians.values()):.3f}s")
        folder = self.write_specs(SPEC_COUNT)
        self.progress(f"DAG files: the same with {SPEC_COUNT} model specs in {folder}")
        many = {path.name: product_dag_parse(path, repeats=3, models_dir=folder) for path in dag_files}
        many_medians = {name: round(statistics.median(values), 4) for name, values in many.items()}
        slowest = max(many_medians, key=lambda name: many_medians[name])
        self.figures[f"dag_parse_seconds_max_{SPEC_COUNT}_specs"] = many_medians[slowest]
        self.details[f"dag_parse_{SPEC_COUNT}_specs"] = {
            "models_dir": str(folder),
            "specs": SPEC_COUNT,
            "median_seconds": many_medians,
            "runs": many,
        }
        self.progress(f"DAG files with {SPEC_COUNT} specs: slowest {slowest} {many_medians[slowest]:.3f}s")

    def measure_e2e(self, data: DataSet) -> None:
        out = product_nightly_e2e(
            self.settings_env(self.store(data)), self.home, night(1), self.options.e2e_timeout, self.progress
        )
        self.figures[f"nightly_e2e_seconds_{size_label(self.options.rows)}"] = round(out["seconds"], 1)
        self.details["nightly_e2e"] = out
        self.progress(f"e2e: trigger to success in {out['seconds']:.0f}s")
        stages = self.stage_sum()
        out["stages"] = stages
        if stages["seconds"] is not None:
            self.figures["nightly_e2e_vs_stages_ratio"] = round(out["seconds"] / stages["seconds"], 3)
            self.progress(
                f"e2e: {out['seconds']:.0f}s against {stages['seconds']:.1f}s of stages "
                f"({', '.join(f'{name} {value:.1f}s' for name, value in stages['parts'].items())}): "
                f"ratio {self.figures['nightly_e2e_vs_stages_ratio']}"
            )

    def stage_sum(self) -> dict[str, Any]:
        """The nightly run's stages as measured alone in this run: validation, scoring and drift of night 1, and the
        warehouse load of its predictions at the measured bulk-load rate (when the warehouse part ran)."""
        label = size_label(self.options.rows)
        parts: dict[str, float] = {}
        for stage, key in (
            ("validation", f"validation_seconds_{label}"),
            ("scoring", "scoring"),
            ("drift", f"drift_seconds_{label}"),
        ):
            if key == "scoring":
                champion = self.details.get("scoring", {}).get("champion")
                value = champion["stage"]["seconds"] if champion else None
            else:
                value = self.figures.get(key)
            if value is not None:
                parts[stage] = float(value)
        rate = self.figures.get("warehouse_rows_per_s")
        champion = self.details.get("scoring", {}).get("champion")
        if rate and champion:
            parts["warehouse_load"] = champion["stage"]["rows"] / rate
        complete = all(stage in parts for stage in ("validation", "scoring", "drift"))
        return {
            "seconds": round(sum(parts.values()), 3) if complete else None,
            "parts": {name: round(value, 3) for name, value in parts.items()},
            "missing": [stage for stage in ("validation", "scoring", "drift", "warehouse_load") if stage not in parts],
        }

    # -- results ----------------------------------------------------------------------------------------------

    def finish(self, start_machine: dict[str, Any]) -> dict[str, Any]:
        options = self.options
        goals = targets(options.rows, options.sizes)
        checks = {}
        for key, (op, bound) in goals.items():
            value = self.figures.get(key)
            passed = None if value is None else meets(value, op, bound)
            checks[key] = {"target": f"{op} {bound:g}", "pass": passed}
        end_machine = machine()
        result: dict[str, Any] = {
            **self.figures,
            "growth": self.growth_table(),
            "targets": checks,
            "rows": options.rows,
            "sizes": list(options.sizes),
            "skipped": sorted(options.skip),
            "model": MODEL,
            "seconds": round(time.monotonic() - self.started, 1),
            "generation": self.generation,
            "details": {**self.details, "children": self.child_seconds},
            "errors": self.errors,
            "machine": {**end_machine, "load_average_start": start_machine["load_average"]},
            "workspace": str(self.home),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return result


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part.replace("_", "")) for part in value.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected row counts separated by commas") from None
    if not sizes or min(sizes) < 1000:
        raise argparse.ArgumentTypeError(f"{value!r}: every size must be at least 1000 rows")
    return sizes


def _skip(value: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - set(SKIPPABLE))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; valid: {', '.join(SKIPPABLE)}")
    return names


def _rows(value: str) -> int:
    try:
        rows = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a row count") from None
    if rows < 4000:
        raise argparse.ArgumentTypeError(f"{value!r}: at least 4000 rows (the retrain needs 4 nights)")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=_rows, default=DEFAULT_ROWS, help="rows per night for the figures")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        help="rows per night for the growth table, comma-separated (default 100000,1000000,10000000)",
    )
    parser.add_argument(
        "--skip", type=_skip, default=frozenset(), help=f"parts to leave out, comma-separated: {', '.join(SKIPPABLE)}"
    )
    parser.add_argument(
        "--json-out", type=Path, default=None, help="write the JSON here (default $NIGHTSHIFT_HOME/bench/bench-<time>)"
    )
    parser.add_argument(
        "--agreement-nights", type=int, default=4, help="nights compared with the full-data drift run (2 to 4)"
    )
    parser.add_argument(
        "--rows-per-file", type=int, default=1_000_000, help="a night's drop is split into files of this many rows"
    )


def run_from_args(args: argparse.Namespace) -> int:
    """`nightshift bench`: run, print the table, write the JSON; exit 1 when a part failed."""
    options = Options(
        rows=args.rows,
        sizes=args.sizes,
        skip=args.skip,
        json_out=args.json_out,
        agreement_nights=args.agreement_nights,
        rows_per_file=args.rows_per_file,
    )
    bench = Bench(options)
    result = bench.run()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = options.json_out or bench.home / f"bench-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    path.write_text(text)
    (bench.home / "latest.json").write_text(text)
    print()
    print(format_table(result))
    print(f"JSON: {path} (and {bench.home / 'latest.json'})")
    return 1 if result["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stage"]:
        if len(argv) != 3:
            print("usage: python -m nightshift_dev.bench stage <name> <json arguments>", file=sys.stderr)
            return 2
        return run_stage(argv[1], json.loads(argv[2]))
    parser = argparse.ArgumentParser(prog="python -m nightshift_dev.bench", description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

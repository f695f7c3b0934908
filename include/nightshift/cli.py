"""The `nightshift` command: simulate data, run the demo, print summaries, check specs, set up Airflow."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys

from nightshift.config import SpecError, get_spec, load_specs, settings


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; expected YYYY-MM-DD") from None


def cmd_check_specs(args: argparse.Namespace) -> int:
    specs = load_specs(args.models_dir)
    for spec in specs:
        print(f"ok  {spec.name}: {len(spec.features)} features, gate {spec.promotion.metric} >= {spec.promotion.floor}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from nightshift.simulate import SimulationPlan, simulate
    from nightshift.storage import open_store

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
    from nightshift.demo import Season, run_demo
    from nightshift.summary import format_summary

    season = Season(model=args.model, nights=args.nights, rows_per_day=args.rows, shift_after=args.shift_after)
    summary = run_demo(season, timeout=args.timeout)
    print()
    print(format_summary(summary))
    print(f"  airflow runs:            {json.dumps(summary['airflow_runs'])}")
    print(f"  finished in {summary['seconds']:.0f}s. Open the drift index in a browser: {summary['drift_index']}")
    if args.json_out:
        with open(args.json_out, "w") as handle:
            json.dump(summary, handle, indent=2, default=str)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nightshift.summary import format_summary, season_summary

    summary = season_summary(settings(), args.model)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0


def cmd_airflow_env(args: argparse.Namespace) -> int:
    """Print `export` lines that point a shell's Airflow at the embedded default's data."""
    from nightshift.demo import Season, airflow_settings

    for key, value in sorted(airflow_settings(settings(), Season()).items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_airflow_setup(args: argparse.Namespace) -> int:
    from nightshift.demo import Season, airflow_env, prepare_airflow

    prepare_airflow(airflow_env(settings(), Season()))
    print("Airflow metadata database migrated; pool nightshift_promotions (1 slot) set")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nightshift", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-specs", help="validate every model spec and print one line each")
    check.add_argument("--models-dir", default=None)
    check.set_defaults(func=cmd_check_specs)

    sim = commands.add_parser("simulate", help="write daily drops and delayed labels into the landing area")
    sim.add_argument("--model", default="credit_risk")
    sim.add_argument("--start", type=_date, required=True)
    sim.add_argument("--days", type=int, default=21)
    sim.add_argument("--rows", type=int, default=4000, help="rows per day")
    sim.add_argument("--shift", type=_date, default=None, help="first day of the population and concept shift")
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--bad-row-share", type=float, default=0.0)
    sim.set_defaults(func=cmd_simulate)

    demo = commands.add_parser("demo", help="run a simulated season through Airflow's scheduler and print a summary")
    demo.add_argument("--model", default="credit_risk")
    demo.add_argument("--nights", type=int, default=21)
    demo.add_argument("--rows", type=int, default=4000, help="rows per night")
    demo.add_argument("--shift-after", type=int, default=11, help="nights before the shift starts")
    demo.add_argument("--timeout", type=float, default=1500, help="seconds to wait for the season")
    demo.add_argument("--json-out", default=None, help="also write the summary as JSON to this file")
    demo.set_defaults(func=cmd_demo)

    summary = commands.add_parser("summary", help="print the season summary from the warehouse")
    summary.add_argument("--model", default="credit_risk")
    summary.add_argument("--json", action="store_true")
    summary.set_defaults(func=cmd_summary)

    env = commands.add_parser("airflow-env", help="print export lines for Airflow on the embedded default")
    env.set_defaults(func=cmd_airflow_env)

    setup = commands.add_parser("airflow-setup", help="migrate Airflow's database and create the promotion pool")
    setup.set_defaults(func=cmd_airflow_setup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

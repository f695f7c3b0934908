"""Deterministic daily drops and delayed labels for the demo credit-risk model.

A stable period, then from `shift_date` on a population shift (covariate drift) and a change in how
the features drive defaults (concept drift); with `concept_only`, only the change in how features drive defaults. Rows are generated and written in chunks, so a day of
millions of rows never sits in memory whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nightshift.config import ModelSpec
from nightshift.stores.objects import ObjectStore, flat_partition_writer

PURPOSES = ["car", "home", "education", "business", "debt_consolidation"]
HOME_OWNERSHIP = ["RENT", "OWN", "MORTGAGE"]
TERMS = [12, 24, 36, 60]


@dataclass(frozen=True)
class SimulationPlan:
    start: dt.date
    days: int
    rows_per_day: int
    shift_date: dt.date | None = None
    seed: int = 42
    bad_row_share: float = 0.0
    chunk_rows: int = 250_000
    files_per_day: int = 1
    bad_dates: dict[dt.date, float] = field(default_factory=dict)
    concept_only: bool = False
    """From `shift_date` on, change only how the features drive defaults: the population stays as it was."""

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=offset) for offset in range(self.days)]


def day_seed(seed: int, day: dt.date, chunk: int | str) -> int:
    """A 64-bit seed for one chunk (or a named stream) of one day, stable across runs and platforms."""
    digest = hashlib.sha256(f"{seed}:{day.isoformat()}:{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def generate_chunk(
    day: dt.date, start_row: int, rows: int, shifted: bool, rng: np.random.Generator, concept: bool | None = None
) -> pd.DataFrame:
    """One chunk of applications for `day`, with the true default flag in column `defaulted`.

    `shifted` moves the population; `concept` (by default the same as `shifted`) changes how features drive defaults.
    """
    concept = shifted if concept is None else concept
    shift = 1.0 if shifted else 0.0
    age = rng.integers(21, 75, rows)
    income = np.round(rng.lognormal(mean=10.9 - 0.25 * shift, sigma=0.45, size=rows), 2)
    credit_score = np.clip(rng.normal(690 - 70 * shift, 55, rows), 300, 850).round().astype(int)
    dti = np.round(np.clip(rng.gamma(2.2 + 1.6 * shift, 0.13, rows), 0, 4.9), 3)
    employment = np.round(np.clip(rng.exponential(6.0 - 2.5 * shift, rows), 0, 59), 1)
    employment_missing = rng.random(rows) < 0.03
    open_accounts = rng.poisson(6 + 2 * shift, rows)
    term = rng.choice(TERMS, rows, p=[0.15, 0.3, 0.35, 0.2])
    loan = np.round(np.clip(income * rng.uniform(0.05, 0.6 + 0.3 * shift, rows), 1000, 240000), 2)
    home = rng.choice(HOME_OWNERSHIP, rows, p=[0.4 + 0.2 * shift, 0.2 - 0.05 * shift, 0.4 - 0.15 * shift])
    purpose_p = [0.25, 0.2, 0.1, 0.15, 0.3] if not shifted else [0.1, 0.1, 0.1, 0.15, 0.55]
    purpose = rng.choice(PURPOSES, rows, p=purpose_p)

    z_score = (credit_score - 690) / 55
    z_dti = (dti - 0.29) / 0.2
    z_emp = (np.where(employment_missing, 6.0, employment) - 6.0) / 6.0
    if not concept:
        logit = -2.0 - 1.1 * z_score + 0.7 * z_dti - 0.3 * z_emp + 0.4 * (purpose == "business")
    else:
        logit = (
            -2.4
            - 0.3 * z_score
            + 1.6 * z_dti
            + 0.6 * z_emp
            + 1.2 * (purpose == "debt_consolidation")
            + 0.6 * (home == "RENT")
        )
    defaulted = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)

    index = np.arange(start_row, start_row + rows)
    seconds = np.sort(rng.integers(0, 86_400, rows))
    timestamps = pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame(
        {
            "application_id": [f"{day:%Y%m%d}-{i:09d}" for i in index],
            "application_ts": timestamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "age": age,
            "annual_income": income,
            "loan_amount": loan,
            "loan_term_months": term,
            "credit_score": credit_score,
            "debt_to_income": dti,
            "employment_years": np.where(employment_missing, np.nan, employment),
            "open_accounts": open_accounts,
            "home_ownership": home,
            "purpose": purpose,
            "defaulted": defaulted,
        }
    )


def corrupt_rows(frame: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Damage a share of rows the way real drops go wrong: bad types, out-of-range values, unknown codes."""
    if share <= 0:
        return frame
    frame = frame.astype({"age": object, "annual_income": object, "home_ownership": object, "credit_score": object})
    picked = np.flatnonzero(rng.random(len(frame)) < share)
    kinds = rng.integers(0, 4, len(picked))
    for row, kind in zip(picked, kinds, strict=True):
        if kind == 0:
            frame.iat[row, frame.columns.get_loc("age")] = "unknown"
        elif kind == 1:
            frame.iat[row, frame.columns.get_loc("annual_income")] = -1000.0
        elif kind == 2:
            frame.iat[row, frame.columns.get_loc("home_ownership")] = "CASTLE"
        else:
            frame.iat[row, frame.columns.get_loc("credit_score")] = 9999
    return frame


def split_rows(rows: int, parts: int) -> list[int]:
    """`rows` split into `parts` near-equal file sizes (at least one row each when there are enough rows)."""
    parts = max(1, min(parts, rows)) if rows else 1
    base, extra = divmod(rows, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def simulate(store: ObjectStore, spec: ModelSpec, plan: SimulationPlan) -> dict[str, int]:
    """Write every day's drop and its labels (landing `label_delay_days` later); return row counts."""
    totals = {"days": 0, "rows": 0, "labels": 0}
    feature_columns = spec.raw_columns
    delay = dt.timedelta(days=spec.target.label_delay_days)
    for day in plan.dates:
        shifted = plan.shift_date is not None and day >= plan.shift_date
        share = plan.bad_dates.get(day, plan.bad_row_share)
        drop_prefix = spec.sources.drop.path.format(model=spec.name, dt=day.isoformat()).rstrip("/")
        label_prefix = spec.sources.labels.path.format(model=spec.name, dt=(day + delay).isoformat()).rstrip("/")
        with tempfile.TemporaryDirectory() as labels_dir:
            labels_path = Path(labels_dir) / "labels.csv"
            manifest = {"model": spec.name, "dt": day.isoformat(), "rows": plan.rows_per_day}
            with flat_partition_writer(store, drop_prefix, manifest) as folder:
                written = 0
                chunk = 0
                for part, part_rows in enumerate(split_rows(plan.rows_per_day, plan.files_per_day)):
                    drop_path = folder / f"part-{part:05d}.csv"
                    part_end = written + part_rows
                    first_in_part = True
                    while written < part_end:
                        rows = min(plan.chunk_rows, part_end - written)
                        rng = np.random.default_rng(day_seed(plan.seed, day, chunk))
                        frame = generate_chunk(
                            day, written, rows, shifted and not plan.concept_only, rng, concept=shifted
                        )
                        labels = frame[[spec.entity_id, spec.target.column]]
                        drop = corrupt_rows(frame[feature_columns], share, rng)
                        drop.to_csv(drop_path, mode="a", header=first_in_part, index=False)
                        labels.to_csv(labels_path, mode="a", header=chunk == 0, index=False)
                        first_in_part = False
                        written += rows
                        chunk += 1
            label_manifest = {"model": spec.name, "dt": (day + delay).isoformat(), "for_dt": day.isoformat()}
            with flat_partition_writer(store, label_prefix, label_manifest) as folder:
                (folder / "labels.csv").write_bytes(labels_path.read_bytes())
        totals["days"] += 1
        totals["rows"] += plan.rows_per_day
        totals["labels"] += plan.rows_per_day
    return totals

import datetime as dt

import pandas as pd

from nightshift.stores.objects import LocalStore
from nightshift_dev.simulate import SimulationPlan, simulate


def run(tmp_path, name, **kwargs):
    store = LocalStore((tmp_path / name).as_uri())
    return store


def test_same_seed_same_bytes_and_labels_land_after_the_delay(tmp_path, demo_spec):
    plan = SimulationPlan(start=dt.date(2026, 10, 1), days=2, rows_per_day=500, seed=3, chunk_rows=200)
    first, second = LocalStore((tmp_path / "a").as_uri()), LocalStore((tmp_path / "b").as_uri())
    simulate(first, demo_spec, plan)
    simulate(second, demo_spec, plan)
    key = "landing/credit_risk/dt=2026-10-02/part-00000.csv"
    assert first.read_bytes(key) == second.read_bytes(key)
    drop = pd.read_csv(first.local_path(key))
    assert len(drop) == 500 and drop["application_id"].is_unique
    labels = pd.read_csv(first.local_path("landing/credit_risk/labels/dt=2026-10-03/labels.csv"))
    assert set(labels["application_id"]) == set(drop["application_id"])


def test_shift_moves_the_population(tmp_path, demo_spec):
    store = LocalStore((tmp_path / "s").as_uri())
    plan = SimulationPlan(start=dt.date(2026, 10, 1), days=2, rows_per_day=3000, shift_date=dt.date(2026, 10, 2))
    simulate(store, demo_spec, plan)
    before = pd.read_csv(store.local_path("landing/credit_risk/dt=2026-10-01/part-00000.csv"))
    after = pd.read_csv(store.local_path("landing/credit_risk/dt=2026-10-02/part-00000.csv"))
    assert after["credit_score"].mean() < before["credit_score"].mean() - 40
    assert (after["purpose"] == "debt_consolidation").mean() > (before["purpose"] == "debt_consolidation").mean() + 0.15


def test_bad_rows_are_injected_at_the_requested_share(tmp_path, demo_spec):
    store = LocalStore((tmp_path / "bad").as_uri())
    simulate(
        store, demo_spec, SimulationPlan(start=dt.date(2026, 10, 1), days=1, rows_per_day=4000, bad_row_share=0.05)
    )
    drop = pd.read_csv(store.local_path("landing/credit_risk/dt=2026-10-01/part-00000.csv"), dtype=str)
    damaged = (
        (drop["age"] == "unknown")
        | (pd.to_numeric(drop["annual_income"], errors="coerce") < 0)
        | (drop["home_ownership"] == "CASTLE")
        | (pd.to_numeric(drop["credit_score"], errors="coerce") > 850)
    )
    assert 0.03 < damaged.mean() < 0.07


def test_a_night_split_into_files_holds_every_row_once(tmp_path, demo_spec):
    store = LocalStore((tmp_path / "parts").as_uri())
    plan = SimulationPlan(start=dt.date(2026, 10, 1), days=1, rows_per_day=1001, chunk_rows=300, files_per_day=3)
    simulate(store, demo_spec, plan)
    keys = sorted(key for key in store.list("landing/credit_risk/dt=2026-10-01") if key.endswith(".csv"))
    assert [key.rsplit("/", 1)[1] for key in keys] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    frames = [pd.read_csv(store.local_path(key)) for key in keys]
    assert [len(frame) for frame in frames] == [334, 334, 333]
    ids = pd.concat(frames)["application_id"]
    assert ids.is_unique and len(ids) == 1001
    labels = pd.read_csv(store.local_path("landing/credit_risk/labels/dt=2026-10-02/labels.csv"))
    assert set(labels["application_id"]) == set(ids)

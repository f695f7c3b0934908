"""The example models: their specs (include/models) and the nights `land_example` writes for them."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from nightshift.cli import main
from nightshift.config import ModelSpec
from nightshift.stores.objects import LocalStore
from nightshift_dev.examples import (
    EXAMPLES,
    Landing,
    example_for,
    example_rows,
    example_specs_dir,
    land_example,
    read_example_yaml,
)

START = dt.date(2026, 10, 1)
NAMES = sorted(EXAMPLES)
FORMAT_OF = {"breast_cancer": ("csv.gz", "csv.gz"), "wine_cultivar": ("parquet", "parquet")}
FORMAT_OF["diabetes_progression"] = ("parquet", "csv.gz")


def store_at(tmp_path: Path, name: str = "store") -> LocalStore:
    return LocalStore((tmp_path / name).as_uri())


def data_files(store: LocalStore, prefix: str) -> list[str]:
    return sorted(key for key in store.list(prefix) if not key.rsplit("/", 1)[1].startswith("_"))


def read_file(store: LocalStore, key: str) -> pd.DataFrame:
    path = store.local_path(key)
    if key.endswith(".parquet"):
        return pq.read_table(path).to_pandas()
    if key.endswith(".csv.gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b", f"{key} is not gzip"
        return pd.read_csv(path, compression="gzip")
    return pd.read_csv(path)


def read_partition(store: LocalStore, prefix: str) -> pd.DataFrame:
    return pd.concat([read_file(store, key) for key in data_files(store, prefix)], ignore_index=True)


def spec_valid_today(raw: dict[str, Any]) -> dict[str, Any]:
    """The breast-cancer spec without issue 11's additions (task, a text positive_label, gzip CSV): valid before
    and after they are merged, so the ModelSpec path of land_example is exercised now."""
    stripped = copy.deepcopy(raw)
    stripped.pop("task", None)
    stripped["target"].pop("positive_label", None)
    for source in stripped["sources"].values():
        source["format"] = "csv"
    return stripped


def test_the_example_specs_ship_beside_the_demo_and_are_created_paused() -> None:
    folder = example_specs_dir()
    assert folder.parts[-2:] == ("include", "models")
    assert sorted(path.stem for path in folder.glob("*.yaml")) == sorted([*NAMES, "credit_risk"])
    for name in NAMES:
        assert read_example_yaml(name)["schedule"]["paused_at_creation"] is True


@pytest.mark.parametrize("name", NAMES)
def test_each_night_lands_a_drop_and_its_labels_a_day_later_in_the_specs_formats(tmp_path: Path, name: str) -> None:
    raw = read_example_yaml(name)
    landing = Landing.of(raw)
    store = store_at(tmp_path)
    totals = land_example(store, raw, START, nights=3, rows_per_night=200, seed=1)
    assert totals == {"nights": 3, "rows": 600, "labels": 600, "files": 6}
    drop_format, labels_format = FORMAT_OF[name]
    assert (landing.drop_formats, landing.labels_formats) == ((drop_format,), (labels_format,))
    assert landing.label_delay_days == 1
    assert not store.exists(f"landing/{name}/labels/dt={START}/_SUCCESS")
    for offset in range(3):
        day = START + dt.timedelta(days=offset)
        drop_prefix, labels_prefix = f"landing/{name}/dt={day}", f"landing/{name}/labels/dt={day + dt.timedelta(1)}"
        assert data_files(store, drop_prefix) == [f"{drop_prefix}/part-00000.{drop_format}"]
        assert data_files(store, labels_prefix) == [f"{labels_prefix}/labels-00000.{labels_format}"]
        marker = json.loads(store.read_bytes(f"{drop_prefix}/_SUCCESS"))
        assert marker["files"] == [f"part-00000.{drop_format}"] and marker["rows"] == 200
        drop, labels = read_partition(store, drop_prefix), read_partition(store, labels_prefix)
        assert list(drop.columns) == [landing.entity_id, landing.timestamp, *landing.features]
        assert list(labels.columns) == [landing.entity_id, landing.target]
        assert len(drop) == 200 and drop[landing.entity_id].is_unique
        assert list(labels[landing.entity_id]) == list(drop[landing.entity_id])
        stamps = pd.to_datetime(drop[landing.timestamp], utc=True)
        assert (stamps.dt.date == day).all() and stamps.is_monotonic_increasing
        assert drop.notna().all().all() and labels.notna().all().all()


def test_entity_ids_are_unique_across_nights(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    land_example(store, read_example_yaml("wine_cultivar"), START, nights=3, rows_per_night=100)
    ids = pd.concat(read_partition(store, f"landing/wine_cultivar/dt={START + dt.timedelta(days=i)}") for i in range(3))
    assert ids["lot_id"].is_unique and len(ids) == 300


def test_parquet_columns_have_natural_types(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    land_example(store, read_example_yaml("wine_cultivar"), START, nights=1, rows_per_night=50)
    land_example(store, read_example_yaml("diabetes_progression"), START, nights=1, rows_per_night=50)
    wine = pq.read_schema(store.local_path(f"landing/wine_cultivar/dt={START}/part-00000.parquet"))
    types = {field.name: str(field.type) for field in wine}
    assert (types["lot_id"], types["analysed_ts"], types["magnesium"], types["proline"]) == (
        "string",
        "string",
        "int64",
        "int64",
    )
    assert types["alcohol"] == "double" and types["color_intensity"] == "double"
    cultivars = pq.read_table(
        store.local_path(f"landing/wine_cultivar/labels/dt={START + dt.timedelta(1)}/labels-00000.parquet")
    )
    assert str(cultivars.schema.field("cultivar").type) == "int64"
    assert set(cultivars.column("cultivar").to_pylist()) <= {0, 1, 2}
    diabetes = pq.read_table(store.local_path(f"landing/diabetes_progression/dt={START}/part-00000.parquet"))
    assert str(diabetes.schema.field("sex").type) == "int64" and set(diabetes.column("sex").to_pylist()) == {1, 2}
    assert str(diabetes.schema.field("age").type) == "int64" and str(diabetes.schema.field("bmi").type) == "double"


def test_gzip_csv_has_a_fixed_header_and_reads_back_as_csv(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    land_example(store, read_example_yaml("breast_cancer"), START, nights=1, rows_per_night=20)
    data = store.read_bytes(f"landing/breast_cancer/dt={START}/part-00000.csv.gz")
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\x00\x00\x00\x00"
    text = gzip.decompress(data).decode()
    assert text.splitlines()[0].startswith("biopsy_id,biopsy_ts,mean_radius,") and len(text.splitlines()) == 21


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path, name: str) -> None:
    raw = read_example_yaml(name)
    first, second, other = store_at(tmp_path, "a"), store_at(tmp_path, "b"), store_at(tmp_path, "c")
    for store, seed in ((first, 5), (second, 5), (other, 6)):
        land_example(store, raw, START, nights=2, rows_per_night=100, shift_from=START + dt.timedelta(1), seed=seed)
    keys = data_files(first, f"landing/{name}")
    assert len(keys) == 4 and keys == data_files(second, f"landing/{name}")
    assert all(first.read_bytes(key) == second.read_bytes(key) for key in keys)
    assert any(first.read_bytes(key) != other.read_bytes(key) for key in keys)


def test_the_shift_moves_the_shifted_features_and_leaves_the_rest(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    shift_from = START + dt.timedelta(days=1)
    land_example(store, read_example_yaml("breast_cancer"), START, nights=2, rows_per_night=3000, shift_from=shift_from)
    before = read_partition(store, f"landing/breast_cancer/dt={START}")
    after = read_partition(store, f"landing/breast_cancer/dt={shift_from}")
    assert after["mean_area"].mean() / before["mean_area"].mean() == pytest.approx(1.3, abs=0.06)
    assert after["mean_texture"].mean() - before["mean_texture"].mean() == pytest.approx(4.0, abs=0.5)
    assert after["mean_radius"].mean() == pytest.approx(before["mean_radius"].mean(), rel=0.03)
    assert not json.loads(store.read_bytes(f"landing/breast_cancer/dt={START}/_SUCCESS"))["shifted"]
    assert json.loads(store.read_bytes(f"landing/breast_cancer/dt={shift_from}/_SUCCESS"))["shifted"]


def test_jitter_is_small_and_keeps_the_data_sets_precision(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    land_example(store, read_example_yaml("diabetes_progression"), START, nights=1, rows_per_night=2000)
    drop = read_partition(store, f"landing/diabetes_progression/dt={START}")
    source = example_rows(Landing.of(read_example_yaml("diabetes_progression")), example_for("diabetes_progression"))
    assert drop["bmi"].mean() == pytest.approx(source["bmi"].mean(), rel=0.03)
    assert drop["bmi"].nunique() > source["bmi"].nunique()
    assert (drop["bmi"] == drop["bmi"].round(1)).all() and (drop["s5"] == drop["s5"].round(4)).all()


def test_a_mixed_drop_splits_each_night_between_its_formats(tmp_path: Path) -> None:
    raw = read_example_yaml("diabetes_progression")
    raw["sources"]["drop"]["format"] = ["parquet", "csv.gz"]
    store = store_at(tmp_path)
    land_example(store, raw, START, nights=1, rows_per_night=101)
    prefix = f"landing/diabetes_progression/dt={START}"
    assert data_files(store, prefix) == [f"{prefix}/part-00000.parquet", f"{prefix}/part-00001.csv.gz"]
    parts = [read_file(store, key) for key in data_files(store, prefix)]
    assert [len(part) for part in parts] == [51, 50]
    assert pd.concat(parts)["patient_id"].is_unique


def test_a_validated_spec_lands_exactly_like_its_yaml(tmp_path: Path) -> None:
    raw = spec_valid_today(read_example_yaml("breast_cancer"))
    spec = ModelSpec.model_validate(raw)
    from_yaml, from_spec = store_at(tmp_path, "yaml"), store_at(tmp_path, "spec")
    land_example(from_yaml, raw, START, nights=2, rows_per_night=80, shift_from=START)
    land_example(from_spec, spec, START, nights=2, rows_per_night=80, shift_from=START)
    keys = data_files(from_spec, "landing/breast_cancer")
    assert [key.rsplit("/", 1)[1] for key in keys] == ["part-00000.csv"] * 2 + ["labels-00000.csv"] * 2
    assert keys == data_files(from_yaml, "landing/breast_cancer")
    assert all(from_yaml.read_bytes(key) == from_spec.read_bytes(key) for key in keys)


def test_the_cli_lands_an_example_from_a_models_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "breast_cancer.yaml").write_text(yaml.safe_dump(spec_valid_today(read_example_yaml("breast_cancer"))))
    monkeypatch.setenv("NIGHTSHIFT_STORE_URI", (tmp_path / "store").as_uri())
    argv = ["examples", "land", "--model", "breast_cancer", "--start", "2026-10-01", "--nights", "2", "--rows", "60"]
    assert main([*argv, "--shift-from", "2026-10-02", "--models-dir", str(models)]) == 0
    assert "wrote 2 drops of breast_cancer (120 rows)" in capsys.readouterr().out
    store = store_at(tmp_path)
    assert store.exists("landing/breast_cancer/dt=2026-10-02/_SUCCESS")
    assert store.exists("landing/breast_cancer/labels/dt=2026-10-03/_SUCCESS")
    assert main([*argv, "--models-dir", str(tmp_path / "nowhere")]) == 2
    assert "model spec file not found" in capsys.readouterr().err


def test_bad_requests_name_what_is_wrong(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    raw = read_example_yaml("wine_cultivar")
    with pytest.raises(ValueError, match=r"no bundled data set for model 'credit_risk'.*breast_cancer"):
        land_example(store, {**raw, "name": "credit_risk"}, START, nights=1)
    with pytest.raises(ValueError, match=r"features \['sugar'\] are not columns of .*wine.*'alcohol'"):
        land_example(store, {**raw, "features": {**raw["features"], "sugar": {"type": "float"}}}, START, nights=1)
    bad_format = copy.deepcopy(raw)
    bad_format["sources"]["labels"]["format"] = "xlsx"
    with pytest.raises(ValueError, match=r"sources.labels.format 'xlsx'.*'csv', 'csv.gz', 'parquet'"):
        land_example(store, bad_format, START, nights=1)
    with pytest.raises(ValueError, match="at least 1"):
        land_example(store, raw, START, nights=0)
    assert store.list("landing") == []


@pytest.mark.parametrize("name", NAMES)
def test_the_example_spec_matches_the_data_it_lands(tmp_path: Path, name: str) -> None:
    """Every column the spec names is landed, and a shifted season stays inside its ranges, categories and classes."""
    raw = yaml.safe_load((example_specs_dir() / f"{name}.yaml").read_text())
    assert raw["name"] == name and raw["task"] in ("binary", "multiclass", "regression")
    features = raw["features"]
    assert set(raw["drift"]["features"]) <= set(features)
    assert {item["column"] for item in raw["promotion"].get("slices", [])} <= set(features)
    assert set(EXAMPLES[name].shifts) <= set(features)
    store = store_at(tmp_path)
    land_example(store, raw, START, nights=4, rows_per_night=1500, shift_from=START + dt.timedelta(days=2))
    landing = Landing.of(raw)
    drops = pd.concat(read_partition(store, landing.drop_prefix(START + dt.timedelta(i))) for i in range(4))
    labels = pd.concat(read_partition(store, landing.labels_prefix(START + dt.timedelta(i + 1))) for i in range(4))
    assert list(drops.columns) == [raw["entity_id"], raw["timestamp"], *features]
    for column, feature in features.items():
        values = drops[column]
        if feature["type"] == "category":
            assert set(values) <= set(feature["categories"]), column
        else:
            assert values.min() >= feature["min"] and values.max() <= feature["max"], column
    target = raw["target"]
    landed = set(labels[target["column"]])
    if raw["task"] == "multiclass":
        assert landed == set(target["classes"])
    elif raw["task"] == "binary":
        assert target["positive_label"] in landed and len(landed) == 2
    else:
        assert pd.api.types.is_float_dtype(labels[target["column"]])

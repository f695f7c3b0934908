"""Scoring from Arrow batches: the prepared pipelines, the ids hashed from Arrow buffers and the files they write hold
what scikit-learn and pandas give, to the bit, for every model kind."""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import logging
import random
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from nightshift.config import PROJECT_ROOT, ModelSpec, load_spec
from nightshift.kinds import kind_of, model_inputs
from nightshift.lifecycle.train import build_pipeline
from nightshift.stages.score import prepared as prepared_module
from nightshift.stages.score.predict import (
    Scorer,
    iter_scoring_batches,
    prediction_ids,
    prediction_schema,
    score_batches,
)
from nightshift.stages.score.prepared import prepare
from nightshift.stages.score.siphash import hash_strings, keys_of
from nightshift.stores.objects import open_store
from nightshift_dev.simulate import generate_chunk
from tests.unit.test_config import write_spec

DAY = "2026-10-01"
CLASSES = ["class_0", "class_1", "class_2"]
PINNED_IDS = {
    "20261001-000000000": "fee0a000fccf03c01bd43e5f8a3d0dd8",
    "20261001-000000001": "7cb9b0dce7c64548012f508fc4664985",
    "a": "dc45374f16e6bde4f9420bdc617678d9",
    "": "f3db14c3c1508481e86faf5b87ff9380",
    "é漢🙂": "872094d97d5d9580cae98561b3b3c11c",
    "x" * 16: "3378825eceac32983c2bf9547abd2e06",
    "y" * 23: "d4c76a18d4f2656e0b7e6f6d37cccf93",
}
"""Ids of credit_risk's champion on 2026-10-01, as the scoring stage wrote them before it hashed Arrow buffers."""


def pandas_ids(model: str, day: str, alias: str, entity_ids: pd.Series) -> list[str]:
    """The ids as scoring derived them before: pandas' hash_array of the Python strings, two keys, hex digits."""
    key = hashlib.sha256(f"{model}|{day}|{alias}".encode()).hexdigest()
    values = entity_ids.astype(str).to_numpy(dtype=object)
    pair = np.empty((len(values), 2), dtype=">u8")
    pair[:, 0] = pd.util.hash_array(values, categorize=False, hash_key=key[:16])
    pair[:, 1] = pd.util.hash_array(values, categorize=False, hash_key=key[16:32])
    digits = binascii.hexlify(pair.tobytes()).decode()
    return [digits[start : start + 32] for start in range(0, len(digits), 32)]


def test_prediction_ids_are_the_ones_scoring_always_wrote():
    entities = list(PINNED_IDS)
    expected = list(PINNED_IDS.values())
    assert prediction_ids("credit_risk", DAY, "champion", pd.Series(entities)).to_pylist() == expected
    assert prediction_ids("credit_risk", DAY, "champion", pa.array(entities)).to_pylist() == expected
    large = pa.array(entities, type=pa.large_string())
    assert prediction_ids("credit_risk", DAY, "champion", large).to_pylist() == expected
    chunked = pa.chunked_array([entities[:3], entities[3:]])
    assert prediction_ids("credit_risk", DAY, "champion", chunked).to_pylist() == expected
    assert prediction_ids("credit_risk", DAY, "champion", pa.array(entities).slice(2)).to_pylist() == expected[2:]
    challenger = prediction_ids("credit_risk", DAY, "challenger", pa.array(entities[:2])).to_pylist()
    assert challenger == ["50a3ab3e3286ea10019116fd038cb5c5", "c139479bbff4a5a81123286c57401913"]


def test_arrow_hashing_gives_pandas_values_for_any_strings():
    rng = random.Random(5)
    alphabet = "abcXYZ019-_ é漢🙂\x00"
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 41))) for _ in range(4000)]
    shared = [f"20261001-{number:09d}" for number in range(3000)]
    key = hashlib.sha256(b"any|key|here").hexdigest()
    for column in (pa.array(values), pa.array(values, type=pa.large_string()), pa.array(shared), pa.array(values[5:9])):
        objects = np.asarray(column.to_pylist(), dtype=object)
        expected = np.stack([pd.util.hash_array(objects, categorize=False, hash_key=key[i : i + 16]) for i in (0, 16)])
        np.testing.assert_array_equal(hash_strings(column, [keys_of(key[:16]), keys_of(key[16:32])]), expected)
    with pytest.raises(ValueError, match="without nulls"):
        hash_strings(pa.array(["a", None]), [keys_of(key[:16])])


def test_entity_ids_with_nulls_or_numbers_are_spelled_as_pandas_spells_them():
    ids = pd.Series(["a", None, "c"], dtype=object)
    assert prediction_ids("m", DAY, "champion", pa.array(ids)).to_pylist() == pandas_ids("m", DAY, "champion", ids)
    from nightshift.stages.score.predict import entity_strings

    table = pa.table({"id": pa.array([7, None, 9], type=pa.int64())})
    assert entity_strings(table, "id").to_pylist() == pd.Series([7, None, 9]).astype(str).tolist()


@pytest.fixture(scope="module")
def binary_spec() -> ModelSpec:
    return load_spec(PROJECT_ROOT / "include" / "models" / "credit_risk.yaml")


def _multiclass(raw: dict[str, Any]) -> dict[str, Any]:
    raw.update(task="multiclass")
    raw["target"].pop("positive_label")
    raw["target"]["classes"] = CLASSES
    raw["promotion"] = {"metric": "macro_f1", "floor": 0.3}
    return raw


def _regression(raw: dict[str, Any]) -> dict[str, Any]:
    raw.update(task="regression")
    raw["target"].pop("positive_label")
    raw["training"]["estimator"] = "sklearn.linear_model.Ridge"
    raw["training"]["params"] = {}
    raw["promotion"] = {"metric": "rmse", "floor": 0.6, "min_improvement": 0.01}
    raw.pop("performance", None)
    return raw


@pytest.fixture(scope="module")
def specs(binary_spec, tmp_path_factory) -> dict[str, ModelSpec]:
    folder = tmp_path_factory.mktemp("specs")
    return {
        "binary": binary_spec,
        "multiclass": load_spec(write_spec(folder, "loan_grade", _multiclass)),
        "regression": load_spec(write_spec(folder, "loan_loss", _regression)),
    }


def damaged(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Rows as no validated night holds them, but a pipeline must still score alike: missing numbers and
    categories, and categories training never saw."""
    frame = frame.copy()
    for column in ("employment_years", "annual_income", "age"):
        frame.loc[rng.random(len(frame)) < 0.05, column] = np.nan
    frame.loc[rng.random(len(frame)) < 0.03, "home_ownership"] = None
    frame.loc[rng.random(len(frame)) < 0.03, "purpose"] = "time_travel"
    return frame


@pytest.fixture(scope="module")
def night() -> pd.DataFrame:
    return damaged(
        generate_chunk(dt.date(2026, 10, 1), 0, 3000, False, np.random.default_rng(3)), np.random.default_rng(4)
    )


def targets(frame: pd.DataFrame, task: str) -> pd.Series:
    if task == "multiclass":
        return pd.Series(np.asarray(CLASSES, dtype=object)[frame["credit_score"].fillna(600).to_numpy() // 10 % 3])
    if task == "regression":
        return frame["loan_amount"] * 0.01 + frame["credit_score"].fillna(600)
    return frame["defaulted"]


ESTIMATORS = {
    "binary-linear": ("binary", LogisticRegression(max_iter=300)),
    "binary-tree": ("binary", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
    "multiclass-tree": ("multiclass", HistGradientBoostingClassifier(max_iter=10, random_state=0)),
    "multiclass-linear": ("multiclass", LogisticRegression(max_iter=300)),
    "regression-linear": ("regression", Ridge()),
    "regression-tree": ("regression", HistGradientBoostingRegressor(max_iter=20, random_state=0)),
}


@pytest.fixture(scope="module")
def pipelines(specs, night) -> dict[str, tuple[ModelSpec, Pipeline]]:
    """Each kind's pipeline, trained on rows holding missing categories (so None is one of its categories)."""
    fitted = {}
    for name, (task, estimator) in ESTIMATORS.items():
        spec = specs[task]
        fitted[name] = (spec, build_pipeline(spec, estimator).fit(model_inputs(night, spec), targets(night, task)))
    return fitted


def arrow_forms(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, pa.Table]:
    """The rows as scoring reads them: plain strings, dictionaries, and chunked dictionaries of two row groups."""
    columns = [spec.entity_id, *spec.feature_names]
    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    categories = [name for name, feature in spec.features.items() if feature.type == "category"]
    encoded = table.select(columns)
    for name in categories:
        position = encoded.schema.get_field_index(name)
        encoded = encoded.set_column(position, name, encoded.column(name).dictionary_encode())
    half = len(frame) // 2
    chunked = pa.concat_tables([encoded.slice(0, half), encoded.slice(half).combine_chunks().unify_dictionaries()])
    return {"strings": table, "dictionaries": encoded, "chunked": chunked}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_prepared_pipeline_gives_scikit_learns_matrix_and_outputs_to_the_bit(pipelines, night, name):
    spec, pipeline = pipelines[name]
    kind = kind_of(spec)
    inputs = model_inputs(night, spec)
    expected_matrix = pipeline[0].transform(inputs)
    expected = kind.outputs(pipeline, inputs, spec)
    for form, table in arrow_forms(night, spec).items():
        model = prepare(pipeline, spec, table.slice(0, 500))
        assert model.fast, form
        np.testing.assert_array_equal(model.transform(table), expected_matrix, err_msg=form)
        np.testing.assert_array_equal(kind.outputs(model, table, spec), expected, err_msg=form)


def test_a_pipeline_of_another_shape_or_a_column_of_another_type_scores_through_scikit_learn(pipelines, night):
    spec, fitted = pipelines["binary-linear"]
    kind, inputs = kind_of(spec), model_inputs(night, spec)
    numeric = [name for name, feature in spec.features.items() if feature.type != "category"]
    categorical = [name for name, feature in spec.features.items() if feature.type == "category"]
    other = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", SimpleImputer(), numeric),
                        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
                    ]
                ),
            ),
            ("estimator", HistGradientBoostingClassifier(max_iter=10, random_state=0)),
        ]
    ).fit(inputs, night["defaulted"])
    table = arrow_forms(night, spec)["dictionaries"]
    model = prepare(other, spec, table)
    assert not model.fast
    np.testing.assert_array_equal(kind.outputs(model, table, spec), kind.outputs(other, inputs, spec))

    model = prepare(fitted, spec, table)
    texts = table.set_column(table.schema.get_field_index("age"), "age", table.column("age").cast(pa.string()))
    assert model.fast and model.transform(texts) is None
    np.testing.assert_array_equal(kind.outputs(model, texts, spec), kind.outputs(fitted, inputs, spec))


def test_a_prepared_transform_that_differs_from_scikit_learns_is_not_used(pipelines, night, monkeypatch, caplog):
    spec, fitted = pipelines["binary-tree"]
    made = prepared_module._numeric_block

    def shifted(*args: Any) -> Any:
        block = made(*args)
        return (
            block
            if block is None
            else prepared_module.NumericBlock(
                block.columns, block.fill, None if block.mean is None else block.mean + 1e-12, block.scale, block.out
            )
        )

    monkeypatch.setattr(prepared_module, "_numeric_block", shifted)
    table = arrow_forms(night, spec)["strings"]
    with caplog.at_level(logging.WARNING, logger=prepared_module.__name__):
        model = prepare(fitted, spec, table)
    assert not model.fast
    assert "differs from scikit-learn's on the check rows" in caplog.text
    kind = kind_of(spec)
    np.testing.assert_array_equal(
        kind.outputs(model, table, spec), kind.outputs(fitted, model_inputs(night, spec), spec)
    )


def expected_file(frame: pd.DataFrame, spec: ModelSpec, scorer: Scorer, chunk_rows: int) -> pa.Table:
    """A scorer's predictions file as the stage wrote it before it read Arrow batches: each chunk through pandas,
    `model_inputs` and the whole pipeline, ids from pandas' hashing of the Python strings."""
    kind, schema, tables = kind_of(spec), prediction_schema(spec), []
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        entity_ids = chunk[spec.entity_id].astype(str)
        columns = kind.prediction_columns(kind.outputs(scorer.model, model_inputs(chunk, spec), spec), spec)
        rows = len(chunk)
        tables.append(
            pa.table(
                {
                    "prediction_id": pandas_ids(spec.name, DAY, scorer.alias, entity_ids),
                    "entity_id": entity_ids.tolist(),
                    "score": np.asarray(columns.pop("score"), dtype="float64"),
                    "model": [spec.name] * rows,
                    "model_version": [scorer.version] * rows,
                    "alias": [scorer.alias] * rows,
                    "run_id": ["run-1"] * rows,
                    **columns,
                },
                schema=schema,
            )
        )
    return pa.concat_tables(tables)


@pytest.mark.parametrize("kind_name", ["binary", "multiclass", "regression"])
def test_scored_files_hold_what_the_pipeline_and_pandas_give(tmp_path, pipelines, night, kind_name):
    """A curated file of several row groups, read as Arrow in chunks that cross them, scored by two scorers."""
    names = [name for name in ESTIMATORS if name.startswith(kind_name)]
    spec = pipelines[names[0]][0]
    store = open_store(tmp_path.joinpath("store").as_uri())
    local = tmp_path / "part-00000.parquet"
    pq.write_table(pa.Table.from_pandas(night, preserve_index=False), local, row_group_size=1100)
    key = f"curated/{spec.name}/dt={DAY}/part-00000.parquet"
    store.put_file(key, local)
    scorers = [Scorer("champion", "3", pipelines[names[0]][1]), Scorer("challenger", "4", pipelines[names[1]][1])]
    paths = {scorer.alias: tmp_path / f"{scorer.alias}.parquet" for scorer in scorers}

    counts = score_batches(iter_scoring_batches(store, spec, [key], 700), spec, DAY, scorers, "run-1", paths)

    assert counts == {"champion": len(night), "challenger": len(night)}
    for scorer in scorers:
        written = pq.read_table(paths[scorer.alias])
        assert written.schema.equals(prediction_schema(spec), check_metadata=False)
        assert written.equals(expected_file(night, spec, scorer, 700))
        sizes = [pq.ParquetFile(paths[scorer.alias]).metadata.row_group(i).num_rows for i in range(5)]
        assert sizes == [700, 700, 700, 700, 200]

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from nightshift.kinds import outputs
from nightshift.lifecycle.train import (
    TrainingDataError,
    build_training_set,
    fit_candidate,
    reference_sample,
    resolve_estimator,
)
from nightshift.stores.objects import open_store, partition_writer
from nightshift_dev.simulate import generate_chunk

START = dt.date(2026, 10, 1)


def curate(store, spec, days: int, rows: int = 300) -> None:
    """Curated features for `days` days and their labels landing one day later."""
    for offset in range(days):
        day = START + dt.timedelta(days=offset)
        frame = generate_chunk(day, 0, rows, False, np.random.default_rng(offset))
        with partition_writer(store, f"curated/{spec.name}/dt={day}", {}) as folder:
            frame[spec.raw_columns].to_parquet(folder / "part-00000.parquet")
        label_day = day + dt.timedelta(days=spec.target.label_delay_days)
        with partition_writer(store, f"curated/{spec.name}/labels/dt={label_day}", {}) as folder:
            frame[[spec.entity_id, spec.target.column]].to_parquet(folder / "labels.parquet")


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def test_holdout_is_the_latest_labelled_day_and_labels_after_as_of_are_unseen(store, demo_spec):
    curate(store, demo_spec, days=6)
    as_of = START + dt.timedelta(days=4)
    training = build_training_set(store, demo_spec, as_of)
    assert training.labelled_dates == [START + dt.timedelta(days=i) for i in range(4)]
    assert training.holdout_dates == [START + dt.timedelta(days=3)]
    assert len(training.holdout) == 300 and len(training.train) == 900
    assert set(training.train["_dt"]).isdisjoint(training.holdout_dates)


def test_too_few_labelled_days_say_what_is_missing(store, demo_spec):
    curate(store, demo_spec, days=2)
    with pytest.raises(TrainingDataError, match=r"only 2 labelled day\(s\).*needs at least 4"):
        build_training_set(store, demo_spec, START + dt.timedelta(days=2))


def test_candidate_learns_and_reference_sample_carries_its_scores(store, demo_spec):
    curate(store, demo_spec, days=6)
    training = build_training_set(store, demo_spec, START + dt.timedelta(days=5))
    model = fit_candidate(demo_spec, training)
    scores = outputs(model, training.holdout, demo_spec)
    assert ((scores >= 0) & (scores <= 1)).all()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(training.holdout["defaulted"], scores) > 0.65
    sample = reference_sample(training.train, demo_spec, outputs(model, training.train, demo_spec), seed=1)
    assert list(sample.columns) == [*demo_spec.feature_names, "score"]
    pd.testing.assert_frame_equal(
        sample, reference_sample(training.train, demo_spec, outputs(model, training.train, demo_spec), seed=1)
    )


def test_wrong_estimator_path_and_params_are_clear():
    with pytest.raises(TrainingDataError, match=r"estimator 'sklearn\.ensemble\.NoSuchThing' not found"):
        resolve_estimator("sklearn.ensemble.NoSuchThing", {}, "spec x")
    with pytest.raises(TrainingDataError, match=r"do not fit sklearn\.linear_model\.LogisticRegression"):
        resolve_estimator("sklearn.linear_model.LogisticRegression", {"depth": 3}, "spec x")
    with pytest.raises(TrainingDataError, match="has no predict_proba"):
        resolve_estimator("sklearn.svm.LinearSVC", {}, "spec x")

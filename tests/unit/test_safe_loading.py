"""Only the format nightshift writes is loaded: any other flavour, or a skops file with a foreign type, is refused unread.

Each hostile model here creates a marker file if it is ever deserialised; the tests check the marker never appears.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

DAY = dt.date(2026, 10, 1)


class Exploding:
    """Unpickling this object opens (so creates) the marker file: code run by loading."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


class Tripwire:
    """skops restores this object through __setstate__, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).touch()
        self.__dict__.update(state)


def _mlflow(home: Path) -> Any:
    import mlflow

    from nightshift.config import settings
    from nightshift.stores import registry

    registry.client(settings())
    return mlflow


def _make_champion(model_info: Any) -> str:
    from nightshift.config import settings
    from nightshift.stores import registry

    version = str(model_info.registered_model_version)
    registry.client(settings()).set_registered_model_alias("credit_risk", registry.CHAMPION, version)
    return version


def _log_hostile(home: Path, flavour: str, marker: Path) -> str:
    """Register a marker-creating model in `flavour` and point `champion` at it."""
    mlflow = _mlflow(home)
    with mlflow.start_run():
        if flavour == "pyfunc":
            from mlflow.pyfunc import PythonModel

            class Hostile(PythonModel):
                def predict(self, context, model_input, params=None):
                    return model_input

                def __reduce__(self) -> tuple[Any, tuple[str, str]]:
                    return (open, (str(marker), "w"))

            info = mlflow.pyfunc.log_model(
                name="model", python_model=Hostile(), registered_model_name="credit_risk", pip_requirements=["mlflow"]
            )
        else:
            info = mlflow.sklearn.log_model(
                Exploding(marker),
                name="model",
                serialization_format=flavour,
                registered_model_name="credit_risk",
                pip_requirements=["scikit-learn"],
            )
    assert not marker.exists()
    return _make_champion(info)


def _log_tripwire(home: Path, marker: Path) -> str:
    """A skops file holding a foreign class, whose MLmodel lists that class among its own trusted types."""
    mlflow = _mlflow(home)
    trusted = [f"{Tripwire.__module__}.Tripwire"]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            Tripwire(marker),
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted,
            registered_model_name="credit_risk",
            pip_requirements=["scikit-learn"],
        )
    marker.unlink(missing_ok=True)  # MLflow itself loads the file once to check it saves
    return _make_champion(info)


@pytest.mark.parametrize(
    ("flavour", "described"),
    [
        ("pickle", "its scikit-learn flavour is saved as 'pickle', not 'skops'"),
        ("cloudpickle", "its scikit-learn flavour is saved as 'cloudpickle', not 'skops'"),
        ("pyfunc", "it has no scikit-learn flavour (its flavours: python_function)"),
    ],
)
def test_a_champion_in_another_flavour_is_refused_unread(home, flavour, described):
    from nightshift.config import settings
    from nightshift.stores import registry

    marker = home / "loaded-and-ran"
    version = _log_hostile(home, flavour, marker)
    champion = registry.alias_version(settings(), "credit_risk", registry.CHAMPION)
    assert champion is not None and champion.version == version

    with pytest.raises(registry.UnsafeModel) as caught:
        registry.load_model(settings(), champion)
    message = str(caught.value)
    assert f"model credit_risk version {version}: refused before loading anything: {described}" in message
    assert "nightshift loads only the scikit-learn flavour saved in skops format" in message
    assert not marker.exists()


def test_nightly_scoring_refuses_a_pickled_champion_and_publishes_nothing(home, demo_spec):
    from nightshift.config import settings
    from nightshift.runs import RunInfo
    from nightshift.stages.score import tasks as score_tasks
    from nightshift.stages.validate import tasks as validate_tasks
    from nightshift.stores import registry
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate

    store = open_store(settings().store_uri)
    simulate(store, demo_spec, SimulationPlan(start=DAY, days=1, rows_per_day=200))
    run = RunInfo("night-1", "scheduled")
    validate_tasks.validate("credit_risk", DAY.isoformat(), run)
    marker = home / "loaded-and-ran"
    version = _log_hostile(home, "pickle", marker)

    with pytest.raises(registry.UnsafeModel, match=f"model credit_risk version {version}: refused before loading"):
        score_tasks.score("credit_risk", DAY.isoformat(), run)
    assert not marker.exists()
    assert not store.exists(f"predictions/credit_risk/dt={DAY}/_SUCCESS")


def test_a_skops_file_with_a_foreign_type_is_refused_whatever_its_mlmodel_trusts(home):
    from nightshift.config import settings
    from nightshift.stores import registry

    marker = home / "restored"
    version = _log_tripwire(home, marker)
    champion = registry.get_version(settings(), "credit_risk", version)
    with pytest.raises(registry.UnsafeModel) as caught:
        registry.load_model(settings(), champion)
    assert (
        f"model credit_risk version {version}: refused before loading anything: its skops file holds types "
        f"nightshift does not trust: {Tripwire.__module__}.Tripwire"
    ) in str(caught.value)
    assert not marker.exists()


def test_a_model_nightshift_logged_loads_and_scores(home, demo_spec):
    import numpy as np

    from nightshift.config import settings
    from nightshift.kinds import model_inputs, outputs
    from nightshift.lifecycle.train import TrainingSet, fit_candidate, reference_sample
    from nightshift.stores import registry
    from nightshift_dev.simulate import generate_chunk

    frame = generate_chunk(DAY, 0, 600, False, np.random.default_rng(3))
    pipeline = fit_candidate(demo_spec, TrainingSet(frame, frame.iloc[:0], DAY, DAY, [DAY], []))
    scores = outputs(pipeline, frame, demo_spec)
    version = registry.log_candidate(
        settings(),
        "credit_risk",
        pipeline,
        input_example=model_inputs(frame.head(20), demo_spec),
        params={},
        metrics={},
        tags={"nightshift.as_of": DAY.isoformat()},
        reference=reference_sample(frame, demo_spec, scores, 1),
        reference_stats={},
        run_name="safe-loading",
    )
    loaded = registry.load_model(settings(), version)
    assert np.allclose(outputs(loaded, frame, demo_spec), scores)


def test_only_scikit_learn_classes_and_numpy_dtype_are_trusted_beyond_skops_defaults():
    from nightshift.stores.registry import refused_types

    accepted = [
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.calibration._SigmoidCalibration",
    ]
    assert refused_types(accepted) == []
    hostile = [
        "builtins.eval",
        "posix.system",
        "numpy.memmap",
        "scipy.io.netcdf_file",
        "sklearn.datasets.fetch_openml",
        "sklearn.no_such_module.Thing",
        "sklearnfake.Estimator",
    ]
    assert refused_types(hostile) == hostile


def _logged_version(home: Path, demo_spec: Any) -> tuple[Any, Any, Any]:
    """A version nightshift logged, the rows it was trained on and their scores."""
    import numpy as np

    from nightshift.config import settings
    from nightshift.kinds import model_inputs, outputs
    from nightshift.lifecycle.train import TrainingSet, fit_candidate, reference_sample
    from nightshift.stores import registry
    from nightshift_dev.simulate import generate_chunk

    frame = generate_chunk(DAY, 0, 400, False, np.random.default_rng(3))
    pipeline = fit_candidate(demo_spec, TrainingSet(frame, frame.iloc[:0], DAY, DAY, [DAY], []))
    scores = outputs(pipeline, frame, demo_spec)
    version = registry.log_candidate(
        settings(),
        "credit_risk",
        pipeline,
        input_example=model_inputs(frame.head(20), demo_spec),
        params={},
        metrics={},
        tags={},
        reference=reference_sample(frame, demo_spec, scores, 1),
        reference_stats={},
        run_name="cached",
    )
    return version, frame, scores


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow unreachable from here on: any call to it fails the test."""
    import mlflow

    from nightshift.stores import registry

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("MLflow was asked")

    monkeypatch.setattr(registry, "client", unreachable)
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", unreachable)


def test_a_loaded_model_is_kept_by_version_and_run_and_loads_again_without_mlflow(home, demo_spec, monkeypatch):
    import numpy as np

    from nightshift.config import settings
    from nightshift.kinds import outputs
    from nightshift.stores import registry

    older, _, _ = _logged_version(home, demo_spec)
    registry.load_model(settings(), older)
    version, frame, scores = _logged_version(home, demo_spec)
    monkeypatch.setattr(registry, "CACHED_VERSIONS", 1)
    registry.load_model(settings(), version)
    cached = registry.model_cache(settings(), version)
    assert cached is not None and (cached / "MLmodel").is_file()
    assert list((home / "cache" / "models" / "credit_risk").iterdir()) == [cached]

    _offline(monkeypatch)
    again = registry.load_model(settings(), registry.VersionInfo("credit_risk", version.version, version.run_id, {}))
    np.testing.assert_array_equal(outputs(again, frame, demo_spec), scores)
    remade = registry.VersionInfo("credit_risk", version.version, "0" * 32, {})
    with pytest.raises(AssertionError, match="MLflow was asked"):
        registry.load_model(settings(), remade)
    assert registry.model_cache(settings(), registry.VersionInfo("credit_risk", "1", "None", {})) is None


def test_a_cached_model_with_a_foreign_type_is_refused_unread_and_downloaded_again(home, demo_spec):
    import numpy as np
    import skops.io

    from nightshift.config import settings
    from nightshift.kinds import outputs
    from nightshift.stores import registry

    version, frame, scores = _logged_version(home, demo_spec)
    registry.load_model(settings(), version)
    cached = registry.model_cache(settings(), version)
    assert cached is not None
    marker = home / "restored"
    skops_path = registry.skops_file(version, cached)
    skops.io.dump(Tripwire(marker), skops_path)
    marker.unlink(missing_ok=True)

    loaded = registry.load_model(settings(), version)
    assert not marker.exists()
    np.testing.assert_array_equal(outputs(loaded, frame, demo_spec), scores)
    kept = skops.io.get_untrusted_types(file=registry.skops_file(version, cached))
    assert kept and not [name for name in kept if "Tripwire" in name]

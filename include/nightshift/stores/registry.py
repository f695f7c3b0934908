"""The MLflow registry: log candidates with their reference sample, read aliases, promote and roll back."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nightshift.config import Settings
from nightshift.kinds import BINARY, ModelKind

CHAMPION = "champion"
CHALLENGER = "challenger"
REFERENCE_PATH = "reference"
CALIBRATION_FILE = "calibration.parquet"


class RegistryError(RuntimeError):
    """The registry could not do what was asked; the message names the model, version and what to check."""


class ChampionChanged(RegistryError):
    """The champion moved between evaluation and promotion."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


_REACHABLE: set[str] = set()


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the server, when a tracking server does not answer its health check."""
    if not tracking_uri.startswith(("http://", "https://")) or tracking_uri in _REACHABLE:
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        raise RegistryError(
            f"MLflow tracking server at {tracking_uri} answered its health check with HTTP {exc.code}; "
            "check the server's logs and that MLFLOW_TRACKING_URI (or the nightshift_mlflow connection) is right"
        ) from None
    except OSError as exc:
        raise RegistryError(
            f"MLflow tracking server at {tracking_uri} is unreachable ({getattr(exc, 'reason', exc)}); check that "
            "the server is up and that MLFLOW_TRACKING_URI (or the nightshift_mlflow connection) points at it"
        ) from None
    _REACHABLE.add(tracking_uri)


def client(settings: Settings) -> MlflowClient:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    check_reachable(settings.mlflow_tracking_uri)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, which `config.settings()` reads: left there, it would pin
    # every later settings() in this process to this server, whatever NIGHTSHIFT_HOME says by then.
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def prepare_backend(settings: Settings) -> None:
    """Create or upgrade MLflow's tables in a database backend once (a server, when configured, does its own)."""
    try:
        client(settings).search_experiments(max_results=1)
    except MlflowException as exc:
        raise _unreachable(settings, exc) from None


def _unreachable(settings: Settings, exc: Exception) -> RegistryError:
    return RegistryError(
        f"MLflow at {settings.mlflow_tracking_uri}: {exc}. Check that the tracking server is up and "
        "MLFLOW_TRACKING_URI points at it."
    )


def experiment_id(settings: Settings, model: str) -> str:
    mlflow_client = client(settings)
    name = f"nightshift/{model}"
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        location = f"{settings.mlflow_artifact_root}/{model}" if settings.mlflow_artifact_root else None
        return str(mlflow_client.create_experiment(name, artifact_location=location))
    except MlflowException:
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def alias_version(settings: Settings, model: str, alias: str) -> VersionInfo | None:
    """The version an alias points at, or None when the model or alias does not exist."""
    mlflow_client = client(settings)
    try:
        found = mlflow_client.get_model_version_by_alias(model, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise _unreachable(settings, exc) from None
    return VersionInfo(model, str(found.version), str(found.run_id), dict(found.tags or {}))


def get_version(settings: Settings, model: str, version: str) -> VersionInfo:
    mlflow_client = client(settings)
    try:
        found = mlflow_client.get_model_version(model, version)
    except MlflowException:
        raise RegistryError(f"model {model}: version {version} does not exist in the registry") from None
    return VersionInfo(model, str(found.version), str(found.run_id), dict(found.tags or {}))


def holdout_metrics(settings: Settings, version: VersionInfo) -> dict[str, float]:
    """The version's metrics on its training holdout (`holdout_<metric>` on its MLflow run), by metric name."""
    try:
        logged = client(settings).get_run(version.run_id).data.metrics
    except MlflowException as exc:
        raise _unreachable(settings, exc) from None
    prefix = "holdout_"
    return {name[len(prefix) :]: float(value) for name, value in sorted(logged.items()) if name.startswith(prefix)}


def log_candidate(
    settings: Settings,
    model: str,
    pipeline: Any,
    *,
    input_example: pd.DataFrame,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    reference: pd.DataFrame,
    reference_stats: dict[str, Any],
    run_name: str,
    kind: ModelKind = BINARY,
    calibration: pd.DataFrame | None = None,
) -> VersionInfo:
    """Log the fitted pipeline, its reference sample and statistics (and the holdout's outputs and labels that
    calibrate its performance estimates, when given); register it and point `challenger` at it."""
    from mlflow.models import infer_signature

    client(settings)
    signature = infer_signature(input_example, kind.signature_output(pipeline, input_example))
    with mlflow.start_run(experiment_id=experiment_id(settings, model), run_name=run_name) as run:
        mlflow.log_params(
            {key: json.dumps(value) if isinstance(value, dict | list) else value for key, value in params.items()}
        )
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            reference.to_parquet(folder / "reference.parquet", index=False)
            (folder / "statistics.json").write_text(json.dumps(reference_stats, indent=2, sort_keys=True))
            if calibration is not None:
                calibration.to_parquet(folder / CALIBRATION_FILE, index=False)
            mlflow.log_artifacts(str(folder), artifact_path=REFERENCE_PATH)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=input_example.head(5),
            registered_model_name=model,
            serialization_format="skops",
            skops_trusted_types=trusted_types(pipeline),
            pip_requirements=runtime_requirements(),
        )
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model, version, key, value)
    mlflow_client.set_registered_model_alias(model, CHALLENGER, version)
    return VersionInfo(model, version, run_id, dict(tags))


def runtime_requirements() -> list[str]:
    """What loading the model needs, pinned to what trained it (saves MLflow's slow requirement inference)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "scipy", "pandas", "skops", "mlflow")]


TRUSTED_EXTRA_TYPES = frozenset({"numpy.dtype"})
"""Types skops does not trust by default that nightshift accepts by name, besides scikit-learn's own classes."""
ACCEPTED_FORMAT = (
    "the scikit-learn flavour saved in skops format (what nightshift's retrain logs), holding only types skops "
    "trusts by default, numpy.dtype and scikit-learn classes"
)


class UnsafeModel(RegistryError):
    """A registered version is not in the format nightshift writes; it was refused before anything was loaded."""


def _is_sklearn_class(name: str) -> bool:
    import importlib

    module_name, _, attribute = name.rpartition(".")
    if not name.startswith("sklearn.") or not module_name:
        return False
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(found, type)


def refused_types(names: list[str]) -> list[str]:
    """The names among skops' untrusted types that nightshift does not accept either (functions, foreign classes)."""
    return [name for name in names if name not in TRUSTED_EXTRA_TYPES and not _is_sklearn_class(name)]


def trusted_types(pipeline: Any) -> list[str]:
    """Types skops must be told to trust for a model we trained ourselves: scikit-learn classes and numpy.dtype."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = refused_types(found)
    if foreign:
        raise RegistryError(
            f"the model holds types nightshift does not load ({foreign}); nightshift logs only models it can load "
            f"safely: {ACCEPTED_FORMAT}"
        )
    return sorted(found)


def _refuse(version: VersionInfo, what: str) -> UnsafeModel:
    return UnsafeModel(
        f"model {version.name} version {version.version}: refused before loading anything: {what}. nightshift loads "
        f"only {ACCEPTED_FORMAT}. Point {CHAMPION} at a version nightshift's retrain registered (the rollback DAG "
        "with target_version does it), or retrain"
    )


def _flavours(version: VersionInfo, folder: Path) -> dict[str, Any]:
    import yaml

    try:
        described = yaml.safe_load((folder / "MLmodel").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _refuse(version, f"its MLmodel file is missing or unreadable ({type(exc).__name__})") from None
    flavours = described.get("flavors") if isinstance(described, dict) else None
    return flavours if isinstance(flavours, dict) else {}


def skops_file(version: VersionInfo, folder: Path) -> Path:
    """The skops file of a downloaded model folder, after checking its MLmodel says sklearn flavour, skops format."""
    flavours = _flavours(version, folder)
    sklearn_flavour = flavours.get("sklearn")
    if not isinstance(sklearn_flavour, dict):
        present = ", ".join(sorted(flavours)) or "none"
        raise _refuse(version, f"it has no scikit-learn flavour (its flavours: {present})")
    serialization = sklearn_flavour.get("serialization_format", "pickle")
    if serialization != "skops":
        raise _refuse(version, f"its scikit-learn flavour is saved as {serialization!r}, not 'skops'")
    path = (folder / str(sklearn_flavour.get("pickled_model", ""))).resolve()
    if path.suffix != ".skops" or not path.is_file() or not path.is_relative_to(folder.resolve()):
        raise _refuse(version, f"its model file {sklearn_flavour.get('pickled_model')!r} is not a .skops file")
    return path


def _checked_trust(version: VersionInfo, path: Path) -> list[str]:
    """The untrusted types of the skops file, once each is one nightshift accepts (the file is read, not loaded)."""
    import zipfile

    import skops.io

    try:
        found = skops.io.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise _refuse(version, f"its skops file is not readable ({type(exc).__name__}: {exc})") from None
    foreign = refused_types(found)
    if foreign:
        raise _refuse(version, f"its skops file holds types nightshift does not trust: {', '.join(foreign)}")
    return found


def load_model(settings: Settings, version: VersionInfo) -> Any:
    """Load a version's pipeline, only if it is in the format nightshift writes; anything else is refused unread.

    The downloaded model folder is kept on local disk by version and run (`model_cache`), so a later task or rerun on
    the same machine loads it without asking MLflow; it is checked exactly as a fresh download is, every time. The
    MLmodel's own skops_trusted_types is not used: the trust list is nightshift's (`refused_types`).
    """
    cached = model_cache(settings, version)
    if cached is not None and (cached / "MLmodel").is_file():
        try:
            model = _load_folder(version, cached)
        except (RegistryError, OSError):
            _discard(cached)
        else:
            with contextlib.suppress(OSError):
                os.utime(cached)
            return model
    with tempfile.TemporaryDirectory(prefix="nightshift-model-") as tmp:
        client(settings)
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=version.uri, dst_path=tmp)
        except MlflowException as exc:
            raise RegistryError(f"model {version.name} version {version.version}: cannot download ({exc})") from None
        model = _load_folder(version, Path(local))
        if cached is not None:
            _keep(Path(local), cached)
        return model


CACHED_VERSIONS = 6
"""How many versions of a model the local model cache keeps (the champion, the challenger, recent candidates)."""


def model_cache(settings: Settings, version: VersionInfo) -> Path | None:
    """Where a version's downloaded model folder is kept on local disk: by name, version and MLflow run, so a registry
    made anew (its version 1 another model) never finds an old folder; None for a version without a run."""
    if not version.run_id or version.run_id == "None" or not version.run_id.isalnum():
        return None
    return settings.home / "cache" / "models" / version.name / f"{version.version}-{version.run_id}"


def _load_folder(version: VersionInfo, folder: Path) -> Any:
    import skops.io

    path = skops_file(version, folder)
    trusted = _checked_trust(version, path)
    try:
        return skops.io.load(path, trusted=trusted)
    except Exception as exc:
        raise RegistryError(
            f"model {version.name} version {version.version}: its skops file does not load "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _keep(folder: Path, cached: Path) -> None:
    """Copy a loaded model folder into the cache in one rename (a concurrent task may have put it there first), then
    drop the model's least recently loaded folders beyond `CACHED_VERSIONS`."""
    import shutil

    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))
    try:
        shutil.copytree(folder, staging, dirs_exist_ok=True)
        staging.rename(cached)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    kept = {}
    for entry in cached.parent.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.name.startswith("."):
                kept[entry] = entry.stat().st_mtime
    for entry in sorted(kept, key=kept.__getitem__, reverse=True)[CACHED_VERSIONS:]:
        _discard(entry)


def _discard(cached: Path) -> None:
    import shutil

    shutil.rmtree(cached, ignore_errors=True)


def _reference_file(settings: Settings, version: VersionInfo, name: str) -> Path:
    """One file of the version's reference artifacts, cached by version on local disk (FileNotFoundError if absent)."""
    cache = settings.home / "cache" / "reference" / version.name / version.version
    path = cache / name
    if not path.exists():
        listed = {Path(item.path).name for item in client(settings).list_artifacts(version.run_id, REFERENCE_PATH)}
        if name not in listed:
            raise FileNotFoundError(f"version {version.version} of {version.name} has no {REFERENCE_PATH}/{name}")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            downloaded = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=f"{REFERENCE_PATH}/{name}", dst_path=tmp
            )
            Path(downloaded).replace(path)
    return path


def load_reference(settings: Settings, version: VersionInfo) -> pd.DataFrame:
    """The reference sample the version was trained on, cached by version on local disk."""
    return pd.read_parquet(_reference_file(settings, version, "reference.parquet"))


def load_calibration(settings: Settings, version: VersionInfo) -> pd.DataFrame | None:
    """The version's holdout outputs and labels that calibrate its performance estimates; None for a version logged
    without them (before nightshift estimated performance)."""
    try:
        return pd.read_parquet(_reference_file(settings, version, CALIBRATION_FILE))
    except FileNotFoundError:
        return None


def load_reference_statistics(settings: Settings, version: VersionInfo) -> dict[str, Any] | None:
    """The statistics.json logged beside the version's reference sample, cached by version on local disk; None when
    the version has none (one registered outside nightshift's retrain)."""
    cache = settings.home / "cache" / "reference" / version.name / version.version
    path = cache / "statistics.json"
    if not path.exists():
        client(settings)
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            try:
                downloaded = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id, artifact_path=f"{REFERENCE_PATH}/statistics.json", dst_path=tmp
                )
            except (MlflowException, OSError):
                return None
            Path(downloaded).replace(path)
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, dict) else None


def move_champion(settings: Settings, model: str, version: str) -> None:
    """Point `champion` at `version` in one call (never delete, then set); drop `challenger` if it marked it."""
    mlflow_client = client(settings)
    mlflow_client.set_registered_model_alias(model, CHAMPION, version)
    challenger = alias_version(settings, model, CHALLENGER)
    if challenger is not None and challenger.version == version:
        mlflow_client.delete_registered_model_alias(model, CHALLENGER)


def set_champion(settings: Settings, model: str, version: str, expected_current: str | None) -> None:
    """Point `champion` at `version` after checking it is still `expected_current` (no lock: see `lifecycle`)."""
    current = alias_version(settings, model, CHAMPION)
    current_version = current.version if current else None
    if current_version != expected_current:
        raise ChampionChanged(
            f"model {model}: the champion is version {current_version}, not {expected_current} as when the candidate "
            "was evaluated; nothing was changed. Re-run the evaluation against the current champion."
        )
    move_champion(settings, model, version)

import datetime as dt
from pathlib import Path

import pytest
import yaml

from nightshift.config import PROJECT_ROOT, SpecError, load_spec, load_specs, settings
from nightshift.dag_defaults import specs_to_build
from nightshift.runtime import embedded_db

DEMO = PROJECT_ROOT / "include" / "models" / "credit_risk.yaml"


def write_spec(folder: Path, name: str, mutate) -> Path:
    raw = yaml.safe_load(DEMO.read_text())
    raw["name"] = name
    mutate(raw)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_demo_spec_loads_with_its_policies():
    spec = load_spec(DEMO)
    assert spec.name == "credit_risk"
    assert spec.raw_columns[:2] == ["application_id", "application_ts"]
    assert spec.drift.method_for("credit_score") == "wasserstein"
    assert spec.drift.method_for("age") == "psi"
    assert spec.drift.critical_features() == ["credit_score", "debt_to_income"]
    assert spec.promotion.metric == "roc_auc"


def test_unknown_drift_method_names_file_field_and_valid_values(tmp_path):
    path = write_spec(
        tmp_path, "bad_method", lambda raw: raw["drift"]["features"]["credit_score"].update(method="magic")
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert str(path) in message
    assert "drift.features.credit_score.method" in message
    assert "'psi'" in message and "'wasserstein'" in message
    assert "magic" in message


def test_category_feature_without_categories_is_rejected(tmp_path):
    path = write_spec(tmp_path, "no_categories", lambda raw: raw["features"]["purpose"].pop("categories"))
    with pytest.raises(SpecError, match=r"features\.purpose.*categories"):
        load_spec(path)


def test_misspelled_field_is_reported_as_unknown(tmp_path):
    path = write_spec(tmp_path, "typo", lambda raw: raw["validation"].update(max_bad_rows_share=0.1))
    with pytest.raises(SpecError, match=r"validation\.max_bad_rows_share: unknown field"):
        load_spec(path)


def test_drift_override_for_unknown_feature_is_rejected(tmp_path):
    path = write_spec(tmp_path, "ghost", lambda raw: raw["drift"]["features"].update(ghost={"threshold": 0.2}))
    with pytest.raises(SpecError, match=r"drift\.features\.ghost: not a feature of this model; valid: \['age'"):
        load_spec(path)


def test_estimator_must_be_a_sklearn_dotted_path(tmp_path):
    path = write_spec(tmp_path, "bad_estimator", lambda raw: raw["training"].update(estimator="xgboost.XGBClassifier"))
    with pytest.raises(SpecError, match=r"training\.estimator: must be the dotted path of a scikit-learn"):
        load_spec(path)


def test_name_must_match_file_name(tmp_path):
    raw = yaml.safe_load(DEMO.read_text())
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="must match the file name 'other'"):
        load_spec(path)


def test_invalid_yaml_and_missing_file_are_clear(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(broken)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")


def test_missing_required_field(tmp_path):
    path = write_spec(tmp_path, "no_gate", lambda raw: raw.pop("promotion"))
    with pytest.raises(SpecError, match="promotion: required field is missing"):
        load_spec(path)


def test_load_specs_reads_every_file_in_the_folder(tmp_path):
    write_spec(tmp_path, "alpha", lambda raw: None)
    write_spec(tmp_path, "beta", lambda raw: None)
    assert [spec.name for spec in load_specs(tmp_path)] == ["alpha", "beta"]


def test_a_task_parse_loads_only_the_spec_its_dag_id_names(tmp_path):
    write_spec(tmp_path, "alpha", lambda raw: None)
    write_spec(tmp_path, "beta", lambda raw: None)
    (tmp_path / "gamma.yaml").write_text("not: [valid")
    assert [spec.name for spec in specs_to_build("beta_retrain", tmp_path)] == ["beta"]
    assert [spec.name for spec in specs_to_build("alpha_nightly", tmp_path)] == ["alpha"]
    with pytest.raises(SpecError, match=r"gamma\.yaml"):
        specs_to_build(None, tmp_path)
    with pytest.raises(SpecError, match=r"gamma\.yaml"):
        specs_to_build("delta_nightly", tmp_path)


SETTINGS_VARIABLES = (
    "NIGHTSHIFT_HOME",
    "NIGHTSHIFT_MODELS_DIR",
    "NIGHTSHIFT_STORE_URI",
    "NIGHTSHIFT_WAREHOUSE_URL",
    "MLFLOW_TRACKING_URI",
    "NIGHTSHIFT_MLFLOW_ARTIFACT_ROOT",
    "NIGHTSHIFT_SCHEDULE_START",
    "NIGHTSHIFT_SCHEDULE_END",
)


@pytest.fixture
def clean_environment(monkeypatch):
    for key in SETTINGS_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_settings_defaults_live_under_the_project_home(clean_environment):
    config = settings()
    home = (PROJECT_ROOT / ".nightshift").resolve()
    assert config.home == home
    assert config.models_dir == PROJECT_ROOT / "include" / "models"
    assert config.store_uri == (home / "store").as_uri()
    assert config.warehouse_url == embedded_db.url(home, "warehouse")
    assert config.mlflow_tracking_uri == embedded_db.url(home, "mlflow")
    assert config.mlflow_artifact_root == (home / "mlartifacts").as_uri()
    assert (config.schedule_start, config.schedule_end) == (None, None)


def test_settings_read_each_variable_by_its_name(clean_environment, tmp_path):
    values = {
        "NIGHTSHIFT_HOME": str(tmp_path),
        "NIGHTSHIFT_MODELS_DIR": str(tmp_path / "models"),
        "NIGHTSHIFT_STORE_URI": "s3://bucket/store",
        "NIGHTSHIFT_WAREHOUSE_URL": "postgresql+psycopg2://u@db/warehouse",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "NIGHTSHIFT_SCHEDULE_START": "2026-10-01",
        "NIGHTSHIFT_SCHEDULE_END": "2026-10-21",
    }
    for key, value in values.items():
        clean_environment.setenv(key, value)
    clean_environment.setenv("nightshift_store_uri", "s3://lower-case/is-not-read")
    config = settings()
    assert (config.home, config.models_dir) == (tmp_path.resolve(), tmp_path / "models")
    assert (config.store_uri, config.warehouse_url) == ("s3://bucket/store", "postgresql+psycopg2://u@db/warehouse")
    assert config.mlflow_tracking_uri == "http://mlflow:5000"
    assert config.mlflow_artifact_root is None, "a tracking server keeps its own artifact root"
    assert (config.schedule_start, config.schedule_end) == (dt.date(2026, 10, 1), dt.date(2026, 10, 21))
    clean_environment.setenv("NIGHTSHIFT_MLFLOW_ARTIFACT_ROOT", "s3://bucket/mlflow")
    clean_environment.setenv("NIGHTSHIFT_WAREHOUSE_URL", "")
    config = settings()
    assert config.mlflow_artifact_root == "s3://bucket/mlflow"
    assert config.warehouse_url == embedded_db.url(tmp_path.resolve(), "warehouse"), "empty means unset"


def test_a_bad_schedule_date_names_the_variable(clean_environment):
    clean_environment.setenv("NIGHTSHIFT_SCHEDULE_END", "2026-13-01")
    with pytest.raises(SpecError, match=r"NIGHTSHIFT_SCHEDULE_END='2026-13-01': expected a date as YYYY-MM-DD"):
        settings()


def test_the_performance_policy_names_a_live_metric_of_the_task_and_a_window_it_fits(tmp_path):
    spec = load_spec(DEMO)
    assert spec.performance_metric == "log_loss" and spec.performance.tolerance == 0.05
    assert spec.drift.data_quality.missing_share_increase == 0.05

    def regression_keeping_log_loss(raw):
        raw.update(task="regression")
        raw["target"].pop("positive_label")
        raw["training"].pop("estimator")
        raw["promotion"] = {"metric": "rmse", "floor": 10.0}

    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, "loan_loss", regression_keeping_log_loss))
    assert "performance.metric: 'log_loss' is not a live regression metric" in str(error.value)
    assert "valid: rmse, mae, r2" in str(error.value)

    def window_too_small(raw):
        raw["performance"].update(window_nights=2, min_degraded_nights=3)

    with pytest.raises(SpecError, match="'min_degraded_nights' \\(3\\) must not exceed 'window_nights' \\(2\\)"):
        load_spec(write_spec(tmp_path, "narrow", window_too_small))

    def gate_default(raw):
        raw.pop("performance")

    assert load_spec(write_spec(tmp_path, "plain", gate_default)).performance_metric == "roc_auc"

    def share_above_one(raw):
        raw["drift"]["data_quality"]["out_of_range_share"] = 1.5

    with pytest.raises(SpecError, match=r"drift\.data_quality\.out_of_range_share"):
        load_spec(write_spec(tmp_path, "odd", share_above_one))

from pathlib import Path

import pytest
import yaml

from nightshift.config import PROJECT_ROOT, SpecError, load_spec, load_specs

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

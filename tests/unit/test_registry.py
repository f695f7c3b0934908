"""The registry client leaves the process environment as it found it."""

from __future__ import annotations

import os

from nightshift import registry
from nightshift.config import settings


def test_using_the_registry_does_not_pin_later_settings_to_its_server(home, tmp_path, monkeypatch):
    assert "MLFLOW_TRACKING_URI" not in os.environ
    first = settings()
    assert registry.alias_version(first, "credit_risk", registry.CHAMPION) is None
    assert "MLFLOW_TRACKING_URI" not in os.environ

    other_home = tmp_path / "other"
    other_home.mkdir()
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(other_home))
    assert settings().mlflow_tracking_uri == f"sqlite:///{other_home.resolve() / 'mlflow.db'}"
    assert settings().mlflow_tracking_uri != first.mlflow_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/else.db")
    registry.client(first)
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////somewhere/else.db"

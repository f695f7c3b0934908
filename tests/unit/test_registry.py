"""The registry client leaves the process environment as it found it."""

from __future__ import annotations

import dataclasses
import os

from nightshift import embedded_db, registry
from nightshift.config import settings


def test_using_the_registry_does_not_pin_later_settings_to_its_server(home, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    first = dataclasses.replace(settings(), mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    assert registry.alias_version(first, "credit_risk", registry.CHAMPION) is None
    assert "MLFLOW_TRACKING_URI" not in os.environ

    other_home = tmp_path / "other"
    other_home.mkdir()
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(other_home))
    assert settings().mlflow_tracking_uri == embedded_db.url(other_home.resolve(), "mlflow")
    assert settings().mlflow_tracking_uri != first.mlflow_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/else.db")
    registry.client(first)
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////somewhere/else.db"

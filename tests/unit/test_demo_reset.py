"""`make demo` starts clean: its own files go, anything else under the home stays."""

from __future__ import annotations

from nightshift.config import settings
from nightshift.demo import reset


def test_reset_removes_the_demo_state_and_keeps_the_rest(home):
    (home / "store" / "landing").mkdir(parents=True)
    (home / "store" / "landing" / "part.csv").write_text("a\n")
    (home / "warehouse.db").write_text("")
    (home / "airflow" / "logs").mkdir(parents=True)
    (home / "airflow" / "airflow.db").write_text("")
    (home / "airflow" / "airflow.cfg").write_text("[core]\n")
    (home / "bench").mkdir()

    reset(settings())

    assert not (home / "store").exists() and not (home / "warehouse.db").exists()
    assert not (home / "airflow" / "logs").exists() and not (home / "airflow" / "airflow.db").exists()
    assert (home / "airflow" / "airflow.cfg").exists() and (home / "bench").is_dir()

"""The benchmark's workspace under `$NIGHTSHIFT_HOME/bench`: its stores, the cached nights, the child processes."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nightshift.config import PROJECT_ROOT, settings
from nightshift_dev.bench_plan import (
    BOOTSTRAP_ROWS,
    MODEL,
    RESULT_MARK,
    SHIFT_NIGHT,
    TRAIN_NIGHTS,
    TRAIN_START,
    BenchError,
    DataSet,
    Options,
    night,
    size_label,
)

NAME_LINE = re.compile(r"^name:.*$", re.MULTILINE)


class Workspace:
    """A benchmark run's workspace under `$NIGHTSHIFT_HOME/bench`: its stores, its cached nights, its children."""

    def __init__(self, options: Options, log: Callable[[str], None] = print) -> None:
        self.options = options
        self.home = settings().home / "bench"
        self.log_dir = self.home / "logs"
        self.say = log
        self.started = time.monotonic()
        self.children = 0
        self.generation: dict[str, Any] = {}
        self.child_seconds: list[dict[str, Any]] = []

    # -- workspace --------------------------------------------------------------------------------------------

    def store(self, data: DataSet) -> Path:
        return self.home / "stores" / data.name

    def settings_env(self, store: Path | None) -> dict[str, str]:
        """The bench's own store, warehouse and MLflow, never the demo's (or production's)."""
        found = {
            "NIGHTSHIFT_HOME": str(self.home),
            "NIGHTSHIFT_WAREHOUSE_URL": f"sqlite:///{self.home / 'warehouse.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.home / 'mlflow.db'}",
            "NIGHTSHIFT_MLFLOW_ARTIFACT_ROOT": (self.home / "mlartifacts").as_uri(),
            "NIGHTSHIFT_MODELS_DIR": str(PROJECT_ROOT / "include" / "models"),
        }
        if store is not None:
            found["NIGHTSHIFT_STORE_URI"] = store.as_uri()
        return found

    def env(self, store: Path | None) -> dict[str, str]:
        """The environment of every child: this process's, with the bench's settings."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("NIGHTSHIFT_SCHEDULE_")}
        return {**env, **self.settings_env(store), "PYTHONUNBUFFERED": "1"}

    def reset_state(self, datasets: list[DataSet]) -> None:
        """Start from an empty registry, warehouse and Airflow; keep only the generated drops (the cache)."""
        self.home.mkdir(parents=True, exist_ok=True)
        from nightshift_dev.demo import remove_paths

        remove_paths(self.home, ("warehouse.db", "mlflow.db", "mlartifacts", "cache", "airflow", "logs"))
        self.log_dir.mkdir(parents=True)
        for data in datasets:
            folder = self.store(data)
            if folder.exists():
                for entry in folder.iterdir():
                    if entry.name not in ("landing", "bench-data.json"):
                        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def progress(self, message: str) -> None:
        self.say(f"[bench] {time.monotonic() - self.started:6.0f}s  {message}")

    def child(self, stage: str, arguments: dict[str, Any], store: Path | None, what: str) -> dict[str, Any]:
        """Run one stage in a fresh interpreter; return its result with its own peak RSS."""
        self.children += 1
        log_path = self.log_dir / f"{self.children:02d}-{stage}.log"
        command = [sys.executable, "-m", "nightshift_dev.bench", "stage", stage, json.dumps(arguments)]
        started = time.monotonic()
        with log_path.open("w") as output:
            done = subprocess.run(
                command, env=self.env(store), stdout=subprocess.PIPE, stderr=output, text=True, check=False
            )
            output.write(done.stdout)
        self.child_seconds.append({"stage": stage, "what": what, "seconds": round(time.monotonic() - started, 1)})
        found = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if done.returncode != 0 or not found:
            tail = log_path.read_text()[-3000:]
            raise BenchError(f"{what} failed (exit code {done.returncode}); log {log_path}:\n{tail}")
        result: dict[str, Any] = json.loads(found[-1][len(RESULT_MARK) :])
        return result

    def write_specs(self, count: int) -> Path:
        """`count` model specs in the workspace: the project's, renamed in turn (`<name>_<n>`, as the file stem)."""
        sources = sorted((PROJECT_ROOT / "include" / "models").glob("*.yaml"))
        if not sources:
            raise BenchError(f"no model specs in {PROJECT_ROOT / 'include' / 'models'}")
        folder = self.home / f"specs-{count}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for index in range(count):
            source = sources[index % len(sources)]
            name = f"{source.stem}_{index:03d}"
            text, found = NAME_LINE.subn(f"name: {name}", source.read_text(), count=1)
            if not found:
                raise BenchError(f"{source}: no top-level 'name:' line to rename")
            (folder / f"{name}.yaml").write_text(text)
        return folder

    # -- data -------------------------------------------------------------------------------------------------

    def files_for(self, rows: int) -> int:
        return max(1, math.ceil(rows / self.options.rows_per_file))

    def datasets(self) -> dict[str, DataSet]:
        rows, skip = self.options.rows, self.options.skip
        measured = 2 if "agreement" in skip else 5
        training_nights = tuple((TRAIN_START + dt.timedelta(days=i)).isoformat() for i in range(TRAIN_NIGHTS))
        found = {
            "bootstrap": DataSet("bootstrap", BOOTSTRAP_ROWS, training_nights, None, 1),
            "figures": DataSet(
                size_label(rows),
                rows,
                tuple(night(i) for i in range(1, measured + 1)),
                SHIFT_NIGHT.isoformat(),
                self.files_for(rows),
            ),
        }
        if "retrain" not in skip:
            per_night = rows // TRAIN_NIGHTS
            found["training"] = DataSet(
                f"train-{size_label(rows)}", per_night, training_nights, None, self.files_for(per_night)
            )
        if "growth" not in skip:
            for size in self.options.sizes:
                if size != rows:
                    found[f"growth-{size}"] = DataSet(
                        size_label(size), size, (night(1),), SHIFT_NIGHT.isoformat(), self.files_for(size)
                    )
        return found

    def ensure_data(self, sets: list[DataSet]) -> None:
        """Generate the nights the data sets lack; nights generated before with the same parameters are reused."""
        jobs, markers = [], {}
        for data in sets:
            folder = self.store(data)
            marker = folder / "bench-data.json"
            known: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() else {}
            if known.get("params") != data.params():
                if folder.exists():
                    shutil.rmtree(folder)
                known = {"params": data.params(), "nights": {}}
            present = {
                day: seconds
                for day, seconds in known["nights"].items()
                if (folder / "landing" / MODEL / f"dt={day}" / "_SUCCESS").exists()
            }
            missing = [day for day in data.nights if day not in present]
            self.generation[data.name] = {"cached": sorted(set(data.nights) - set(missing)), "generated": {}}
            markers[folder.as_uri()] = (marker, present, data)
            if missing:
                folder.mkdir(parents=True, exist_ok=True)
                jobs.append(
                    {
                        "store_uri": folder.as_uri(),
                        "nights": missing,
                        "rows": data.rows,
                        "shift": data.shift,
                        "files": data.files,
                    }
                )
                self.progress(f"generating {len(missing)} night(s) of {data.rows:,} rows into {folder}")
        if not jobs:
            return
        out = self.child("generate", {"jobs": jobs}, None, "data generation")
        for uri, seconds in out["generated"].items():
            marker, present, data = markers[uri]
            present.update(seconds)
            marker.write_text(json.dumps({"params": data.params(), "nights": present}, indent=2))
            self.generation[data.name]["generated"] = seconds

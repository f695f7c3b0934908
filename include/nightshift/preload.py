"""Import the heavy libraries once, in Airflow's forkserver, so every task forked from it starts warm.

Named in `[core] mp_forkserver_preload` together with `[scheduler] mp_start_method = forkserver`
(Airflow 3.3+). Importing is all it does: no threads, connections or files are opened here.
"""

import evidently.presets  # noqa: F401
import great_expectations  # noqa: F401
import mlflow.sklearn  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import sklearn.ensemble  # noqa: F401
import sqlalchemy  # noqa: F401

import nightshift.drift
import nightshift.nightly
import nightshift.registry
import nightshift.train
import nightshift.validate  # noqa: F401

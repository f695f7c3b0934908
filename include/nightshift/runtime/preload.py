"""Import the heavy libraries once, in Airflow's forkserver, so every task forked from it starts warm.

Named in `[core] mp_forkserver_preload` together with `[scheduler] mp_start_method = forkserver`
(Airflow 3.3+); Celery workers import it too. It imports, then runs one tiny in-memory Evidently report so
Evidently's and Plotly's first-use costs are paid here once (about 0.35 s off every drift task); no threads,
connections or files are opened here. skops.io is imported here too: at import it lists every scikit-learn class
it trusts (about 1.4 s of CPU), which each task that loads a model would pay again.
"""

import evidently.presets  # noqa: F401
import great_expectations  # noqa: F401
import mlflow.sklearn  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import sklearn.ensemble  # noqa: F401
import skops.io  # noqa: F401
import sqlalchemy  # noqa: F401

import nightshift.lifecycle.train
import nightshift.stages.decision
import nightshift.stages.drift.measure
import nightshift.stages.drift.tasks
import nightshift.stages.labels.tasks
import nightshift.stages.score.predict
import nightshift.stages.score.prepared
import nightshift.stages.score.tasks
import nightshift.stages.validate.checks
import nightshift.stages.validate.tasks
import nightshift.stages.waiting
import nightshift.stores.registry

nightshift.stages.drift.measure.warm_up()

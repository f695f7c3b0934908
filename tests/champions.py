"""A champion registered the way a first promotion leaves one, for tests that score before any retrain ran."""

from __future__ import annotations

import datetime as dt

import numpy as np


def register_champion(
    trained_on: dt.date,
    rows: int = 4000,
    model: str = "credit_risk",
    replacing: str | None = None,
    holdout_rows: int = 0,
) -> str:
    """Train the spec's recipe on a simulated `trained_on` day, log it as nightshift does and make it `champion`.

    `replacing` is the champion version it takes over from (None: the model has no champion yet). With
    `holdout_rows`, a second simulated day of the same population is its holdout: its metrics are logged
    (`holdout_<metric>`) and its outputs and labels calibrate the version's performance estimates, as a retrain does.
    """
    from nightshift.config import get_spec, settings
    from nightshift.kinds import kind_of, model_inputs, outputs
    from nightshift.lifecycle.evaluate import evaluate_scores
    from nightshift.lifecycle.train import (
        TrainingSet,
        fit_candidate,
        reference_sample,
        reference_statistics,
    )
    from nightshift.stages.performance.estimate import calibration_frame
    from nightshift.stores import registry
    from nightshift_dev.simulate import generate_chunk

    config = settings()
    spec = get_spec(model, config.models_dir)
    frame = generate_chunk(trained_on, 0, rows, False, np.random.default_rng(7))
    pipeline = fit_candidate(spec, TrainingSet(frame, frame.iloc[:0], trained_on, trained_on, [trained_on], []))
    reference = reference_sample(frame, spec, outputs(pipeline, frame, spec), spec.training.seed)
    metrics, calibration = {"train_rows": float(rows)}, None
    if holdout_rows:
        holdout = generate_chunk(trained_on, rows, holdout_rows, False, np.random.default_rng(8))
        holdout_outputs = outputs(pipeline, holdout, spec)
        logged = evaluate_scores(spec, holdout, holdout_outputs)["metrics"]
        metrics |= {f"holdout_{name}": value for name, value in logged.items() if value is not None}
        labels = kind_of(spec).metric_labels(holdout[spec.target.column], spec)
        calibration = calibration_frame(holdout_outputs, labels)
    version = registry.log_candidate(
        config,
        model,
        pipeline,
        input_example=model_inputs(frame.head(50), spec),
        params={"estimator": spec.estimator},
        metrics=metrics,
        tags={"nightshift.as_of": trained_on.isoformat(), "nightshift.trigger": "test"},
        reference=reference,
        reference_stats=reference_statistics(reference, spec),
        run_name=f"{model}-bootstrap",
        calibration=calibration,
    )
    registry.set_champion(config, model, version.version, replacing)
    return version.version

"""A small store of real report pages for a few nights, written with nightshift's own page and publish functions.

No Evidently run and no Airflow: each night gets a drift report partition (a stand-in for Evidently's page, with
nightshift's real header), a validation partition (the real validation page), a quarantine partition and, for some
nights, a performance partition; then the real `refresh_index` writes the index.
"""

from __future__ import annotations

import json
from typing import Any

from nightshift.pages.performance import performance_page
from nightshift.pages.report import with_header
from nightshift.pages.validation import validation_page
from nightshift.stores.objects import ObjectStore, partition_writer

MODEL = "credit_risk"
NIGHTS = ("2026-10-01", "2026-10-02", "2026-10-03")
VERSIONS = {"2026-10-01": "1", "2026-10-02": "1", "2026-10-03": "2"}
EVIDENTLY_STAND_IN = (
    "<!DOCTYPE html><html><head></head><body><div id='root'>Evidently report of {dt}</div></body></html>"
)
REJECTED = "loan_id,amount,_row_number,_reasons\r\nL-9,-5,3,amount below 0\r\n"


def summary(day: str, version: str, drifted: bool) -> dict[str, Any]:
    """A drift summary as the drift stage writes it: a psi feature, a ks feature and the prediction."""
    scores = [("amount", "psi", 0.1, 0.3 if drifted else 0.02), ("income", "psi", 0.1, 0.05)]
    scores.append(("age", "ks", 0.05, 0.01 if drifted else 0.4))
    features: list[dict[str, Any]] = [
        {
            "feature": name,
            "method": method,
            "threshold": limit,
            "score": score,
            "drifted": score < limit if method == "ks" else score >= limit,
            "critical": False,
        }
        for name, method, limit, score in scores
    ]
    names = [item["feature"] for item in features if item["drifted"]]
    return {
        "model": MODEL,
        "dt": day,
        "model_version": version,
        "task": "binary",
        "reference_rows": 1000,
        "current_rows": 200,
        "sample": {"size": 5000, "seed": 7, "reference_sampled": 1000, "current_sampled": 200},
        "features": features,
        "drifted_features": names,
        "drift_share": len(names) / len(features),
        "dataset_drift": len(names) / len(features) >= 0.5,
        "critical_drifted": [],
        "prediction": {"method": "psi", "threshold": 0.1, "score": 0.12 if drifted else 0.03, "drifted": drifted},
        "champion_holdout": {"gate_metric": "roc_auc", "metrics": {"roc_auc": 0.8}},
    }


def validation_result(day: str, rejected: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "dt": day,
        "source": f"landing/{MODEL}/dt={day}/part-0.csv",
        "rows": 200,
        "accepted_rows": 200 - rejected,
        "quarantined_rows": rejected,
        "bad_row_share": rejected / 200,
        "max_bad_row_share": 0.05,
        "passed": True,
        "failure_message": None,
        "gx_version": "1.24.1",
        "checks": [
            {
                "check": "range:amount",
                "expectation": "ExpectColumnValuesToBeBetween",
                "column": "amount",
                "severity": "block",
                "success": not rejected,
                "unexpected_count": rejected,
                "examples": [{"row": 3, "value": "-5"}] if rejected else [],
                "row_level": True,
            }
        ],
    }


def performance_document(day: str, version: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "dt": day,
        "metric": "roc_auc",
        "labels_through": day,
        "label_delay_days": 1,
        "aliases": {
            "champion": {
                "model_version": version,
                "rows": 200,
                "labelled_rows": 150,
                "coverage": 0.75,
                "realized": {"roc_auc": 0.78},
                "estimated": {"roc_auc": {"value": 0.79, "lower": 0.74, "upper": 0.84}},
                "reference": {"roc_auc": 0.8},
                "judgement": {
                    "basis": "realized",
                    "degraded": False,
                    "concept_drift": False,
                    "reason": "within tolerance",
                },
            }
        },
    }


def write_night(store: ObjectStore, day: str, version: str, drifted: bool) -> None:
    """One night's drift report, validation page, quarantine and performance page, each a published partition."""
    night = summary(day, version, drifted)
    manifest = {"model": MODEL, "dt": day, "run_id": f"scheduled__{day}"}
    with partition_writer(store, f"reports/drift/{MODEL}/dt={day}", manifest) as folder:
        (folder / "report.html").write_text(with_header(EVIDENTLY_STAND_IN.format(dt=day), night))
        (folder / "report.json").write_text(json.dumps({"dt": day}))
        (folder / "summary.json").write_text(json.dumps(night))
    result = validation_result(day, rejected=1)
    with partition_writer(store, f"validation/{MODEL}/dt={day}", manifest) as folder:
        (folder / "result.json").write_text(json.dumps(result))
        (folder / "result.html").write_text(validation_page(result))
    with partition_writer(store, f"quarantine/{MODEL}/dt={day}", manifest) as folder:
        (folder / "rejected.csv").write_text(REJECTED, newline="")
    document = performance_document(day, version)
    with partition_writer(store, f"reports/performance/{MODEL}/dt={day}", manifest) as folder:
        (folder / "performance.json").write_text(json.dumps(document))
        (folder / "performance.html").write_text(performance_page(document))


def build(store: ObjectStore) -> None:
    """Every night of NIGHTS (the last one drifted), then the index."""
    from nightshift.stages.drift.index import refresh_index

    for day in NIGHTS:
        write_night(store, day, VERSIONS[day], drifted=day == NIGHTS[-1])
    refresh_index(store, MODEL)

"""The loop on production components: Airflow's scheduler, DAG processor and API server (LocalExecutor) on a
PostgreSQL metadata database, S3 (moto's standalone server), an MLflow tracking server with a PostgreSQL
backend and S3 artifacts, and a PostgreSQL warehouse. The tasks reach the object store, the warehouse and
MLflow only through Airflow connections and the store variable. Then a backfill through the REST API."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import uuid
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nightshift.stores.objects import partition_files
from tests.servers import free_port, mlflow_server, moto_server, postgres_database

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
MODEL = "credit_risk"
SETTINGS_VARIABLES = ("NIGHTSHIFT_", "MLFLOW_", "AWS_", "AIRFLOW")


def short_season_spec(models: Path) -> None:
    """The demo spec with a shorter label history and cooldown, so a 7-night season shows the whole loop."""
    raw = yaml.safe_load((PROJECT / "include" / "models" / f"{MODEL}.yaml").read_text())
    raw["training"]["min_labelled_days"] = 3
    raw["drift"]["cooldown_days"] = 1
    models.mkdir()
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(raw))


def connection(**fields) -> str:
    return json.dumps(fields)


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    from nightshift.config import settings
    from nightshift.runtime.supervisor import Services, airflow_settings, prepare_airflow
    from nightshift.stores.objects import ensure_bucket, open_store
    from nightshift_dev.airflow_api import AirflowApi
    from nightshift_dev.demo import Season, wait_for_season
    from nightshift_dev.simulate import SimulationPlan, simulate

    home = tmp_path_factory.mktemp("production")
    models = home / "models"
    short_season_spec(models)
    season = Season(nights=7, rows_per_day=1000, shift_after=4)
    bucket = f"nightshift-{uuid.uuid4().hex[:8]}"
    store_uri = f"s3://{bucket}/store"
    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        s3 = stack.enter_context(moto_server(home / "moto.log"))
        for key, value in {**AWS, "NIGHTSHIFT_S3_ENDPOINT_URL": s3}.items():
            patch.setenv(key, value)
        ensure_bucket(store_uri)
        airflow_db = stack.enter_context(postgres_database("ns_airflow"))
        warehouse_db = stack.enter_context(postgres_database("ns_warehouse"))
        mlflow_db = stack.enter_context(postgres_database("ns_mlflow"))
        mlflow_url = stack.enter_context(
            mlflow_server(home / "mlflow.log", mlflow_db, f"s3://{bucket}/mlflow", MLFLOW_S3_ENDPOINT_URL=s3, **AWS)
        )
        patch.setenv("NIGHTSHIFT_HOME", str(home))
        patch.setenv("NIGHTSHIFT_MODELS_DIR", str(models))
        patch.setenv("NIGHTSHIFT_STORE_URI", store_uri)
        patch.setenv("NIGHTSHIFT_WAREHOUSE_URL", warehouse_db)
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
        config = settings()

        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_VARIABLES)}
        env.update(airflow_settings(config, season, port, catchup=True))
        env.update(
            {
                "NIGHTSHIFT_MODELS_DIR": str(models),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
                "AIRFLOW_CONN_NIGHTSHIFT_OBJECT_STORE": connection(
                    conn_type="aws",
                    login=AWS["AWS_ACCESS_KEY_ID"],
                    password=AWS["AWS_SECRET_ACCESS_KEY"],
                    extra={"endpoint_url": s3, "region_name": "us-east-1"},
                ),
                "AIRFLOW_CONN_NIGHTSHIFT_WAREHOUSE": connection(
                    conn_type="postgres",
                    host="127.0.0.1",
                    port=5432,
                    schema=warehouse_db.rsplit("/", 1)[1],
                    login="postgres",
                ),
                "AIRFLOW_CONN_NIGHTSHIFT_MLFLOW": connection(
                    conn_type="http", host="127.0.0.1", port=int(mlflow_url.rsplit(":", 1)[1]), schema="http"
                ),
                "AIRFLOW_VAR_NIGHTSHIFT_STORE_URI": store_uri,
            }
        )
        env["NIGHTSHIFT_HOME"] = str(home / "worker")
        prepare_airflow(env)
        spec_store = open_store(store_uri)
        from nightshift.config import get_spec

        simulate(
            spec_store,
            get_spec(MODEL),
            SimulationPlan(
                start=season.start,
                days=season.nights,
                rows_per_day=season.rows_per_day,
                shift_date=season.shift_date,
                bad_row_share=0.01,
            ),
        )
        services = Services(env, home / "logs")
        api = AirflowApi(f"http://127.0.0.1:{port}")
        record: dict = {"season": season, "store": spec_store, "config": config, "s3": s3, "bucket": bucket}
        try:
            services.start()
            wait_for_season(api, services, season, 1500, print)
            record["runs_before"] = {dag: api.runs(f"{MODEL}_{dag}") for dag in ("nightly", "retrain")}
            record["before"] = {day: predictions(spec_store, day) for day in season_dates(season)}
            from nightshift_dev.demo import wait_for_backfill

            first = season.end - dt.timedelta(days=2)
            record["backfilled"] = [first + dt.timedelta(days=i) for i in range(3)]
            wait_for_backfill(api, services, api.backfill(f"{MODEL}_nightly", first, season.end))
            record["after"] = {day: predictions(spec_store, day) for day in season_dates(season)}
            wait_for_backfill(api, services, api.backfill(f"{MODEL}_nightly", first, season.end))
            record["again"] = {day: predictions(spec_store, day) for day in season_dates(season)}
            record["runs_after"] = {dag: api.runs(f"{MODEL}_{dag}") for dag in ("nightly", "retrain")}
            record["queued_after"] = api.queued_asset_events(f"{MODEL}_retrain")
        finally:
            services.stop()
            record["logs"] = "".join(path.read_text()[-2000:] for path in (home / "logs").glob("*.log"))
        yield record


def season_dates(season) -> list[dt.date]:
    return [season.start + dt.timedelta(days=offset) for offset in range(season.nights)]


def predictions(store, day: dt.date) -> dict | None:
    prefix = f"predictions/{MODEL}/dt={day}"
    if not store.exists(f"{prefix}/_SUCCESS"):
        return None
    manifest = json.loads(store.read_bytes(f"{prefix}/_SUCCESS"))
    keys = [key for key in partition_files(store, prefix) if key.rsplit("/", 1)[-1].startswith("champion-")]
    frame = pd.concat([pd.read_parquet(io.BytesIO(store.read_bytes(key))) for key in keys], ignore_index=True)
    return {"version": manifest["versions"]["champion"], "frame": frame}


def warehouse_rows(record, table: str) -> list[dict]:
    from nightshift.stores import warehouse

    engine = warehouse.connect(record["config"].warehouse_url)
    return warehouse.fetch_all(engine, getattr(warehouse, table), model=MODEL)


def test_every_night_ran_on_the_schedule_against_the_real_servers(production):
    nightly = production["runs_before"]["nightly"]
    assert len(nightly) == production["season"].nights
    assert {run["state"] for run in nightly} == {"success"}, production["logs"]
    assert {run["run_type"] for run in nightly} == {"scheduled"}


def test_retrain_started_from_the_asset_event_and_promoted_through_mlflow(production):
    retrains = [run for run in production["runs_before"]["retrain"] if run["run_type"] == "asset_triggered"]
    assert retrains and all(run["state"] == "success" for run in retrains)
    ledger = warehouse_rows(production, "promotion_ledger")
    promotions = [row for row in ledger if row["action"] == "promote"]
    assert promotions and promotions[0]["actor"] == "airflow:asset_triggered"
    from nightshift.stores import registry

    champion = registry.alias_version(production["config"], MODEL, registry.CHAMPION)
    assert champion is not None and champion.version == promotions[-1]["champion_after"]
    assert production["config"].mlflow_tracking_uri.startswith("http://127.0.0.1:")


def test_reports_and_model_artifacts_live_in_s3_with_browser_content_types(production):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=production["s3"],
        aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    head = client.head_object(Bucket=production["bucket"], Key=f"store/reports/drift/{MODEL}/index.html")
    assert head["ContentType"].startswith("text/html")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=production["bucket"], Prefix="mlflow/")["Contents"]]
    assert any(key.endswith("reference.parquet") for key in keys)
    assert any("/model" in key for key in keys)


def test_backfill_through_the_api_keeps_one_identical_partition_per_date(production):
    """A backfill scores with the current champion; a night whose champion did not change comes out identical."""
    from nightshift.stores import registry

    champion = registry.alias_version(production["config"], MODEL, registry.CHAMPION)
    assert champion is not None
    before, after, again = production["before"], production["after"], production["again"]
    for day in production["backfilled"]:
        assert after[day]["version"] == champion.version
        pd.testing.assert_frame_equal(after[day]["frame"], again[day]["frame"])
        if before[day] is not None and before[day]["version"] == champion.version:
            pd.testing.assert_frame_equal(before[day]["frame"], after[day]["frame"])
    for day in set(season_dates(production["season"])) - set(production["backfilled"]):
        assert (before[day] or {}).get("version") == (again[day] or {}).get("version")
    keys = production["store"].list(f"predictions/{MODEL}")
    markers = [key for key in keys if key.endswith("/_SUCCESS")]
    assert len(markers) == len({key.split("/")[2] for key in markers})
    rows = warehouse_rows(production, "predictions")
    ids = [row["prediction_id"] for row in rows]
    assert len(ids) == len(set(ids))
    for day in production["backfilled"]:
        champion_rows = [row for row in rows if row["dt"] == day and row["alias"] == "champion"]
        assert len(champion_rows) == len(again[day]["frame"])


def test_backfill_runs_never_request_a_retrain(production):
    backfills = [run for run in production["runs_after"]["nightly"] if run["run_type"] == "backfill"]
    assert len(backfills) == 3 and {run["state"] for run in backfills} == {"success"}
    assert len(production["runs_after"]["retrain"]) == len(production["runs_before"]["retrain"])
    assert production["queued_after"] == 0
    decisions = {row["dt"]: row for row in warehouse_rows(production, "retrain_decisions")}
    for day in production["backfilled"]:
        assert decisions[day]["decision"] == "backfill" and not decisions[day]["requested"]

from nightshift.connections import apply, settings_from_connections


def test_connection_fields_become_nightshift_settings():
    found = settings_from_connections(
        {
            "login": "key",
            "password": "secret",
            "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
        },
        {"host": "db", "port": 5432, "schema": "warehouse", "login": "ns", "password": "p@ss/word"},
        {"host": "mlflow", "port": 5000, "schema": None},
        "s3://bucket/nightshift",
    )
    assert found == {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "NIGHTSHIFT_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "NIGHTSHIFT_STORE_URI": "s3://bucket/nightshift",
        "NIGHTSHIFT_WAREHOUSE_URL": "postgresql+psycopg2://ns:p%40ss%2Fword@db:5432/warehouse",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }


def test_missing_connections_set_nothing():
    assert settings_from_connections(None, None, None, None) == {}


def test_environment_wins_over_connections():
    environ = {"NIGHTSHIFT_WAREHOUSE_URL": "sqlite:///explicit.db"}
    applied = apply({"NIGHTSHIFT_WAREHOUSE_URL": "postgresql://x", "MLFLOW_TRACKING_URI": "http://m:5000"}, environ)
    assert applied == {"MLFLOW_TRACKING_URI": "http://m:5000"}
    assert environ["NIGHTSHIFT_WAREHOUSE_URL"] == "sqlite:///explicit.db"

"""Running nightshift's services: the embedded PostgreSQL, the `make airflow` supervisor, Airflow connections and settings, the forkserver preload."""

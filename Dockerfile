# Images for docker-compose.yaml. Two targets, both pinned to constraints.txt (the project's full lock):
#
#   airflow (the default, last stage): Apache Airflow 3.3.2 on Python 3.11 + requirements.txt + nightshift
#   mlflow: the MLflow 3.17.2 tracking server with the Postgres driver and boto3 for S3 artifacts
#
# Build one by hand with `docker build --target airflow -t nightshift-airflow:0.1.0 .`
# (or `--target mlflow -t nightshift-mlflow:3.17.2`); `docker compose build` builds both.

# --- MLflow tracking server -------------------------------------------------------------------------------
# Built from the same lock as the Airflow image, so the server and the client inside Airflow are the same
# MLflow version, and psycopg2/boto3 are installed at build time instead of at every start.
FROM python:3.11.13-slim-bookworm AS mlflow
COPY constraints.txt /tmp/nightshift/constraints.txt
RUN pip install --no-cache-dir --disable-pip-version-check \
        mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.5 \
        -c /tmp/nightshift/constraints.txt \
    && useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin mlflow
USER 10001
WORKDIR /home/mlflow
EXPOSE 5000
ENTRYPOINT ["mlflow"]
CMD ["server", "--host", "0.0.0.0", "--port", "5000"]

# --- Airflow with nightshift (default target) ----------------------------------------------------------------
FROM apache/airflow:3.3.2-python3.11 AS airflow
# The official image installs as the `airflow` user; keep it that way (no root pip installs).
COPY --chown=airflow:0 requirements.txt constraints.txt /tmp/nightshift/
RUN pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/nightshift/requirements.txt -c /tmp/nightshift/constraints.txt
# Bake the project in, so the image runs without bind mounts too; docker-compose.yaml mounts dags/,
# include/ and plugins/ over these for development. `nightshift` is imported from include/ via PYTHONPATH
# (the same package `pip install -e .` installs locally), so a mounted include/ always wins.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 airflow_settings.yaml /opt/airflow/airflow_settings.yaml
# NIGHTSHIFT_HOME (local caches). Created here, group 0 writable, so the named volume mounted on it is
# writable whatever AIRFLOW_UID the containers run as (they always run in group 0).
RUN mkdir -p /opt/airflow/nightshift-data && chmod 0775 /opt/airflow/nightshift-data
ENV PYTHONPATH=/opt/airflow/include

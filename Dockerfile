# The image docker-compose.yaml runs: Airflow plus nightshift's pinned dependencies.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /tmp/nightshift/
RUN pip install --no-cache-dir -r /tmp/nightshift/requirements.txt -c /tmp/nightshift/constraints.txt

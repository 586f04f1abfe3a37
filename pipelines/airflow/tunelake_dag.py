"""Airflow DAG that runs tunelake once a day over the last 30 days of the lake.

The job is the CLI: Airflow only schedules it and passes the logical date as the window's end, so a
backfill of a past day reproduces that day's analysis. tunelake exits 0 on success, 1 when the run
failed and 2 on a bad pipeline file; a failed or interrupted run leaves no `_SUCCESS`, so downstream
readers never see it. Logs are JSON lines for the Airflow log viewer and log shippers.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

PIPELINE = "/opt/tunelake/pipelines/production.toml"

with DAG(
    dag_id="tunelake_daily",
    start_date=datetime(2026, 1, 1),
    schedule="0 3 * * *",
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["llm-serving", "tuning"],
) as dag:
    BashOperator(
        task_id="tunelake_run",
        bash_command=(
            "tunelake --log-format json run "
            f"{PIPELINE} "
            "--as-of {{ ds }} "
            "--run-id {{ ds_nodash }}"
        ),
        # S3 credentials come from the worker's environment or instance role (AWS_* variables).
    )

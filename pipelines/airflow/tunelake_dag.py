"""Airflow DAG that runs tunelake once a day over the last 30 days of the lake.

The job is the CLI: Airflow only schedules it and passes the logical date as the window's end and
`YYYYMMDD` as the run id, exactly as `tunelake backfill` names its days, so a backfilled day and a
scheduled one are the same run. Exit codes:

- 0: the run is committed;
- 1: the run failed; a failed or interrupted run leaves no `_SUCCESS` and no `runs` row, so readers
  never see it, and the retry replaces it;
- 2: the pipeline file or the command line is wrong (retrying will not help);
- 75: another process is running this run id (it holds the run's lock object); the retry, after
  `retry_delay`, finds it committed or free.

`max_active_runs=1` keeps Airflow from starting two days at once on the same lake; the run lock
keeps a manual `tunelake run` or `tunelake backfill` beside the schedule from interleaving with it.
To catch up a range, either clear the DAG runs of those dates or run
`tunelake backfill PIPELINE --from YYYY-MM-DD --to YYYY-MM-DD` (it skips committed days).

Logs are JSON lines for the Airflow log viewer and log shippers.
"""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

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

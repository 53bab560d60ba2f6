"""Local mode without Docker: the Airflow/MLflow/serving stack as processes, dag.test() runs, the REST client."""

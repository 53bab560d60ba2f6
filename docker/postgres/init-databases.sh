#!/bin/sh
# PostgreSQL init script (mounted into /docker-entrypoint-initdb.d): one role and one database each for
# Airflow's metadata and MLflow's tracking store. The postgres image runs it once, on the first start of
# an empty data volume; later password changes need ALTER ROLE (see docs/deployment.md).
# Passwords come in as psql variables, never spliced into SQL text, so any characters are safe.
# The image *sources* init scripts that are not executable (a checkout may drop the mode bit), inside
# its own bash: so no `set` here that would outlive this file, and a failure exits explicitly.

: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD must be set}"
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD must be set}"

psql --set ON_ERROR_STOP=1 --no-psqlrc --quiet \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  --set airflow_db="${AIRFLOW_DB_NAME:-airflow}" --set airflow_password="$AIRFLOW_DB_PASSWORD" \
  --set mlflow_db="${MLFLOW_DB_NAME:-mlflow}" --set mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL' || exit 1
CREATE ROLE :"airflow_db" LOGIN PASSWORD :'airflow_password';
CREATE DATABASE :"airflow_db" OWNER :"airflow_db";
CREATE ROLE :"mlflow_db" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE :"mlflow_db" OWNER :"mlflow_db";
SQL
echo "init-databases: created roles and databases ${AIRFLOW_DB_NAME:-airflow}, ${MLFLOW_DB_NAME:-mlflow}"

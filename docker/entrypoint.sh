#!/bin/sh
# Entrypoint of the retrain image (every Python service of docker-compose.yml): derive what Airflow
# cannot read from RETRAIN_* settings, then exec the service command (it replaces this shell, so it gets
# the container's signals directly).
set -eu

# Airflow sends email through the connection retrain_smtp. Build it from RETRAIN_SMTP_* / RETRAIN_MAIL_*
# with the function local mode uses (retrain.notify), so both modes share one definition of its shape.
if [ -n "${RETRAIN_SMTP_HOST:-}" ] && [ -z "${AIRFLOW_CONN_RETRAIN_SMTP:-}" ]; then
  AIRFLOW_CONN_RETRAIN_SMTP=$(python -c 'from retrain.notify import smtp_connection_json
from retrain.settings import Settings
print(smtp_connection_json(Settings()))')
  export AIRFLOW_CONN_RETRAIN_SMTP
fi

# SimpleAuthManager otherwise invents a random admin password on first start and only prints it in the
# api-server log; a password from the environment (.env) is one the operator already knows.
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
  passwords=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-${AIRFLOW_HOME:-/opt/airflow}/simple_auth_manager_passwords.json.generated}
  python -c 'import json, os, sys
user = os.environ.get("AIRFLOW_ADMIN_USER") or "admin"
json.dump({user: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, sys.stdout)' >"$passwords"
  chmod 600 "$passwords"
fi

exec "$@"

#!/bin/sh
# Write the .env that docker compose reads: a copy of .env.example with every empty secret filled with a
# fresh random value. Refuses to overwrite, so existing secrets (and the databases keyed on them) survive.
#   sh docker/make-env.sh [OUT]    OUT defaults to .env beside docker-compose.yml
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.env}
if [ -e "$out" ]; then
  echo "make-env: $out exists; delete it first to generate new secrets" >&2
  exit 1
fi

# 32 random bytes as hex: URL-safe (passwords sit inside database URLs) and 64 bytes long, the minimum
# PyJWT accepts without warning for Airflow's HS512 JWTs. Fernet wants 32 bytes as url-safe base64.
hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
fernet() { head -c 32 /dev/urandom | base64 | tr '+/' '-_'; }

tmp="$out.tmp.$$"
umask 077
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
    AIRFLOW_FERNET_KEY=) line="$line$(fernet)" ;;
    POSTGRES_PASSWORD= | AIRFLOW_DB_PASSWORD= | MLFLOW_DB_PASSWORD= | AIRFLOW_JWT_SECRET= | \
      AIRFLOW_API_SECRET_KEY= | AIRFLOW_ADMIN_PASSWORD= | GRAFANA_ADMIN_PASSWORD= | SERVING_API_KEY=)
      line="$line$(hex)" ;;
  esac
  printf '%s\n' "$line"
done <"$root/.env.example" >"$tmp"
mv "$tmp" "$out"
echo "make-env: wrote $out (Airflow and Grafana logins: see AIRFLOW_ADMIN_* and GRAFANA_ADMIN_PASSWORD)"

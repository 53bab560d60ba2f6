#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real, only those missing.
set -euo pipefail
declare -A wanted=()   # command -> Debian package; filled as later stages need them
# Monitoring tests (tests/monitoring, tests/utils/prom.py) run the real Prometheus tools and servers.
wanted[prometheus]=prometheus
wanted[promtool]=prometheus
wanted[amtool]=prometheus-alertmanager
wanted[prometheus-alertmanager]=prometheus-alertmanager
wanted[prometheus-pushgateway]=prometheus-pushgateway
wanted[chromium]=chromium  # UI smoke test of the Airflow api-server (tests/integration/test_airflow_stack.py)
wanted[wrk]=wrk  # load generator of bench/bench_serving.py (not needed by the tests)
wanted[docker-compose]=docker-compose  # `docker-compose config` validates docker-compose.yml (tests/deployment)
wanted[shellcheck]=shellcheck  # lints docker/*.sh (tests/deployment)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/bin/sh
# Render alertmanager.yml with SMTP settings from the environment, then optionally exec a command.
#   render-config.sh IN OUT [command ...]
# Alertmanager cannot read environment variables in its config, so this rewrites the smtp_* lines of
# the global block and the email recipient. It uses the pipeline's variable names, so one .env
# configures both; unset variables keep the committed defaults. POSIX sh + sed: runs in the busybox
# based prom/alertmanager image.
#   RETRAIN_SMTP_HOST, RETRAIN_SMTP_PORT (default 25)  -> smtp_smarthost  host:port
#   RETRAIN_SMTP_USER, RETRAIN_SMTP_PASSWORD           -> smtp_auth_username, smtp_auth_password
#   RETRAIN_SMTP_STARTTLS (true/false)                 -> smtp_require_tls
#   RETRAIN_MAIL_FROM                                  -> smtp_from
#   RETRAIN_MAIL_TO (a@x,b@y or ["a@x","b@y"])         -> the email receiver's "to"
set -eu

if [ "$#" -lt 2 ]; then
  echo "usage: $0 IN OUT [command ...]" >&2
  exit 2
fi
in=$1
out=$2
shift 2

# set_key KEY VALUE: replace the value of every "KEY:" line (any indent, optional "- ") with 'VALUE'.
set_key() {
  # YAML single quotes: double them; sed replacement: escape \ & and the | delimiter.
  quoted=$(printf '%s' "$2" | sed -e "s/'/''/g" -e 's/[\\&|]/\\&/g')
  sed -i -E "s|^([ -]*$1:).*\$|\\1 '$quoted'|" "$out"
}

tmp="$out.tmp.$$"
cp "$in" "$tmp"
out_final=$out
out=$tmp

if [ -n "${RETRAIN_SMTP_HOST:-}" ]; then
  set_key smtp_smarthost "$RETRAIN_SMTP_HOST:${RETRAIN_SMTP_PORT:-25}"
fi
if [ -n "${RETRAIN_SMTP_USER:-}" ]; then
  set_key smtp_auth_username "$RETRAIN_SMTP_USER"
fi
if [ -n "${RETRAIN_SMTP_PASSWORD:-}" ]; then
  set_key smtp_auth_password "$RETRAIN_SMTP_PASSWORD"
fi
if [ -n "${RETRAIN_SMTP_STARTTLS:-}" ]; then
  case $(printf '%s' "$RETRAIN_SMTP_STARTTLS" | tr 'A-Z' 'a-z') in
    1 | true | yes | on) tls=true ;;
    *) tls=false ;;
  esac
  sed -i -E "s|^( *smtp_require_tls:).*\$|\\1 $tls|" "$out"
fi
if [ -n "${RETRAIN_MAIL_FROM:-}" ]; then
  set_key smtp_from "$RETRAIN_MAIL_FROM"
fi
if [ -n "${RETRAIN_MAIL_TO:-}" ]; then
  # pydantic-settings reads lists as JSON; Alertmanager wants "a@x, b@y".
  to=$(printf '%s' "$RETRAIN_MAIL_TO" | sed -e 's/[][" ]//g' -e 's/,/, /g')
  set_key to "$to"
fi

mv "$tmp" "$out_final"
if [ "$#" -gt 0 ]; then
  exec "$@"
fi

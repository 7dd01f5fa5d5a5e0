#!/usr/bin/env bash
# Start (and if needed install) the services the test suite talks to. Idempotent.
set -euo pipefail

pg_up() { python3 - <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(2)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if pg_up; then
  echo "PostgreSQL is up on 127.0.0.1:5432"
else
  echo "PostgreSQL is not reachable on 127.0.0.1:5432 (its tests fail under CI=true, skip otherwise)"
fi

# The rollout tests run the production router (nginx) and a real Prometheus server, both from
# Debian's packages; the tests start their own instances on free loopback ports.
missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing from the Debian packages for the rollout tests"
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; } \
      || echo "could not install$missing: those tests fail under CI=true, skip otherwise"
  else
    echo "missing$missing (apt-get install as root): those tests fail under CI=true, skip otherwise"
  fi
fi

# The browser tests drive Debian's Chromium through Playwright (`playwright install` cannot
# download a browser here). Installed once; a no-op when /usr/bin/chromium is already there.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium from the Debian packages for the browser tests"
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
      || echo "could not install chromium: the browser tests fail under CI=true, skip otherwise"
  else
    echo "/usr/bin/chromium is missing (apt-get install chromium as root): the browser tests fail under CI=true, skip otherwise"
  fi
fi
if [ -x /usr/bin/chromium ]; then
  echo "Chromium is installed at /usr/bin/chromium"
fi

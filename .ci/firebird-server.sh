#!/usr/bin/env bash
# CI (and developers, as root): Debian's Firebird 3 server on 127.0.0.1:3050 for the client–server test.
#
# - installs firebird3.0-server non-interactively, the SYSDBA password preseeded with debconf;
# - binds the server to the loopback address only (RemoteBindAddress), so nothing is reachable from
#   outside the machine — which is why a fixed test password is acceptable here;
# - starts it (the init script, else fbguard as user firebird) and waits until the port answers.
# Idempotent: re-running on a machine where the server is installed and running changes nothing.
#
# The password is a CI-only test credential. tests/test_server.py uses the same default
# (env TORGSOFT_TEST_FB_PASSWORD); override both with that variable if you like.
set -euo pipefail

PASSWORD="${TORGSOFT_TEST_FB_PASSWORD:-ci-test-only}"
HOST=127.0.0.1
PORT=3050
CONF=/etc/firebird/3.0/firebird.conf
DATA_DIR=/var/lib/firebird/3.0/data
OWN_PIDFILE=/run/firebird3.0/firebird-ci.pid   # used only when the init script could not start it

if [ "$(id -u)" != "0" ]; then
  echo "firebird-server.sh: needs root (apt-get, /etc/firebird); skipping — the server test will skip" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "firebird-server.sh: no apt-get on this machine; skipping — the server test will skip" >&2
  exit 0
fi

port_answers() {
  # bash's /dev/tcp: no extra tools needed.
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

wait_port() {  # wait_port SECONDS
  local i
  for ((i = 0; i < $1 * 2; i++)); do
    port_answers && return 0
    sleep 0.5
  done
  return 1
}

export DEBIAN_FRONTEND=noninteractive
if ! dpkg-query -W -f='${Status}' firebird3.0-server 2>/dev/null | grep -q 'install ok installed'; then
  echo "Installing firebird3.0-server (SYSDBA password preseeded)"
  echo "firebird3.0-server shared/firebird/enabled boolean true" | debconf-set-selections
  echo "firebird3.0-server shared/firebird/sysdba_password/first_install password $PASSWORD" | debconf-set-selections
  echo "firebird3.0-server shared/firebird/sysdba_password/new_password password $PASSWORD" | debconf-set-selections
  apt-get update -qq
  # Where services may not start during install (containers, policy-rc.d), it is started below.
  apt-get install -y -qq firebird3.0-server >/dev/null
fi

# Loopback only: exactly one active RemoteBindAddress line, = 127.0.0.1 (comments stay as they are).
RESTART=
if [ "$(grep -cE '^[[:space:]]*RemoteBindAddress[[:space:]]*=' "$CONF")" != 1 ] \
    || ! grep -qE "^[[:space:]]*RemoteBindAddress[[:space:]]*=[[:space:]]*$HOST[[:space:]]*\$" "$CONF"; then
  sed -i -E '/^[[:space:]]*RemoteBindAddress[[:space:]]*=/d' "$CONF"
  printf '\nRemoteBindAddress = %s\n' "$HOST" >>"$CONF"
  RESTART=1
fi
if grep -qE '^[[:space:]]*RemoteServicePort[[:space:]]*=' "$CONF" \
    && ! grep -qE "^[[:space:]]*RemoteServicePort[[:space:]]*=[[:space:]]*$PORT[[:space:]]*\$" "$CONF"; then
  sed -i -E "s|^[[:space:]]*RemoteServicePort[[:space:]]*=.*|RemoteServicePort = $PORT|" "$CONF"
  RESTART=1
fi

# The test creates its databases here (the server process, user firebird, must be able to write).
install -d -o firebird -g firebird -m 0770 "$DATA_DIR"

# Already running with this configuration: nothing to do. Otherwise (re)start it, and first make sure
# SYSDBA has the test password, whatever an earlier install set.
if [ -z "$RESTART" ] && port_answers; then
  echo "Firebird server already answers on $HOST:$PORT"
  exit 0
fi
if [ -x /etc/init.d/firebird3.0 ]; then
  /etc/init.d/firebird3.0 stop >/dev/null 2>&1 || true
fi
# A guard this script started on an earlier run (no init script): its pid file holds the server's pid;
# stop the guard (the server's parent) first, or it would restart the server.
if [ -f "$OWN_PIDFILE" ]; then
  server_pid=$(cat "$OWN_PIDFILE")
  guard_pid=$(ps -o ppid= -p "$server_pid" 2>/dev/null | tr -d ' ' || true)
  if [ -n "$guard_pid" ] && [ "$(ps -o comm= -p "$guard_pid" 2>/dev/null)" = fbguard ]; then
    kill "$guard_pid" 2>/dev/null || true
  fi
  kill "$server_pid" 2>/dev/null || true
  rm -f "$OWN_PIDFILE"
  sleep 1
fi
if ! port_answers; then
  SEC=/var/lib/firebird/3.0/system/security3.fdb
  if [ -f "$SEC" ] && command -v isql-fb >/dev/null; then
    # Set the password in the security database directly (embedded access, server stopped).
    printf "CREATE OR ALTER USER SYSDBA PASSWORD '%s' USING PLUGIN Srp;\nCOMMIT;\n" "$PASSWORD" \
      | runuser -u firebird -- isql-fb -q -user SYSDBA "$SEC" >/dev/null \
      || echo "firebird-server.sh: warning: could not set the SYSDBA password in $SEC" >&2
  fi
  started=
  if [ -x /etc/init.d/firebird3.0 ] && /etc/init.d/firebird3.0 start >/dev/null 2>&1; then
    started=init
  fi
  if [ -z "$started" ] || ! wait_port 15; then
    FBGUARD=/usr/sbin/fbguard
    [ -x "$FBGUARD" ] || FBGUARD=$(command -v fbguard || true)
    if [ -z "$FBGUARD" ]; then
      echo "firebird-server.sh: fbguard not found after installing firebird3.0-server" >&2
      exit 1
    fi
    install -d -o firebird -g firebird /run/firebird3.0
    runuser -u firebird -- "$FBGUARD" -daemon -forever -pidfile "$OWN_PIDFILE"
  fi
fi

if wait_port 30; then
  echo "Firebird server answers on $HOST:$PORT"
  exit 0
fi
echo "firebird-server.sh: the server did not answer on $HOST:$PORT within 30 s" >&2
exit 1

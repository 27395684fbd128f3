#!/usr/bin/env bash
# Installs what the tests need on Debian/Ubuntu, idempotently: redis-server (cluster tests).
# Safe to run again; waits for apt's lock instead of failing when another apt is running.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
else
  SUDO=()
fi

apt_retry() { # retries apt while its lock is busy or a mirror hiccups
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -qq "$@"; then return 0; fi
    echo "install-deps: apt-get $1 failed (attempt $attempt), retrying in $((attempt * 5)) s" >&2
    sleep $((attempt * 5))
  done
  return 1
}

echo "install-deps: installing ${missing[*]}"
apt_retry update
apt_retry install -y --no-install-recommends "${missing[@]}"
# The tests start their own redis-server on free loopback ports; the packaged service is not needed.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${SUDO[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null 2>&1 || { echo "install-deps: redis-server still missing after install" >&2; exit 1; }

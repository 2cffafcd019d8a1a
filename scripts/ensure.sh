#!/usr/bin/env bash
# Installs what the project needs when it is missing, on a fresh Debian machine:
#   ensure.sh node          pnpm (from the npm registry) and the workspace's packages, Node 24 among them
#   ensure.sh system PKG..  Debian packages by command: redis nginx prometheus chromium docker-compose
#                           podman (with netavark, aardvark-dns, catatonit, debootstrap: the compose test's
#                           container engine) alertmanager (amtool) openssl
# Idempotent; prints what it installs. Root installs directly; otherwise it tries sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[ensure] %s\n' "$*" >&2; }

PNPM_VERSION=10.34.8

ensure_node() {
  # A pnpm that cannot run, or is not pnpm 10 (the lockfile's), counts as none: corepack's shim
  # (after `corepack enable`) answers to `pnpm` but may fail to fetch or verify pnpm offline.
  # --force replaces its links.
  if [[ "$(pnpm --version 2>/dev/null)" != 10.* ]]; then
    say "installing pnpm $PNPM_VERSION from the npm registry"
    npm install -g --force "pnpm@$PNPM_VERSION" >/dev/null
    hash -r
  fi
  # The workspace's devDependency `node` brings Node 24 into node_modules/.bin, which pnpm puts first on PATH.
  if [[ ! -x node_modules/.bin/node ]] || [[ pnpm-lock.yaml -nt node_modules/.modules.yaml ]]; then
    say "installing workspace packages (pnpm install --frozen-lockfile)"
    pnpm install --frozen-lockfile --reporter=append-only >&2
  fi
}

apt_updated=0
apt_install() {
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if [[ $apt_updated -eq 0 ]]; then
    say "apt-get update"
    $sudo apt-get update -qq >&2
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}

ensure_system() {
  local want=()
  for what in "$@"; do
    case "$what" in
      redis) command -v redis-server >/dev/null || want+=(redis-server) ;;
      nginx) command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || want+=(nginx-light) ;;
      prometheus) { command -v prometheus >/dev/null && command -v promtool >/dev/null; } || want+=(prometheus) ;;
      chromium) command -v chromium >/dev/null || want+=(chromium) ;;
      docker-compose) command -v docker-compose >/dev/null || want+=(docker-compose) ;;
      # Debian's podman runs containers without a Docker engine; docker-compose (v1) drives it through
      # podman's Docker-compatible API socket (test/containers/). netavark and aardvark-dns give the
      # compose network its DNS (replicas resolve each other by service name), catatonit is
      # compose's `init: true`, debootstrap makes the local base image (no registry is reachable).
      podman)
        command -v podman >/dev/null || want+=(podman)
        [[ -x /usr/lib/podman/netavark ]] || want+=(netavark)
        [[ -x /usr/lib/podman/aardvark-dns ]] || want+=(aardvark-dns)
        [[ -x /usr/libexec/podman/catatonit || -x /usr/bin/catatonit ]] || want+=(catatonit)
        command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || want+=(debootstrap)
        command -v runc >/dev/null || [[ -x /usr/sbin/runc ]] || want+=(runc)
        ;;
      alertmanager) command -v amtool >/dev/null || want+=(prometheus-alertmanager) ;;
      openssl) command -v openssl >/dev/null || want+=(openssl) ;;
      *) say "unknown system dependency: $what"; exit 2 ;;
    esac
  done
  if [[ ${#want[@]} -gt 0 ]]; then
    apt_install "${want[@]}"
  fi
}

case "${1:-}" in
  node) ensure_node ;;
  system) shift; ensure_system "$@" ;;
  *) echo "usage: ensure.sh node | system redis nginx prometheus chromium docker-compose podman alertmanager openssl" >&2; exit 2 ;;
esac

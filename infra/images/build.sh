#!/usr/bin/env bash
# Builds, with podman, local stand-ins for the official images docker-compose.yml names, for a
# machine that reaches Debian's and npm's registries but no image registry (the compose test,
# test/containers/compose.test.ts, runs it). Prints the compose variables that select them:
#
#   eval "$(infra/images/build.sh)"    # CHAT_BASE_IMAGE=... REDIS_IMAGE=... NGINX_IMAGE=... ...
#
# 1. a Debian bookworm base: `debootstrap --variant=minbase` from the mirror apt already uses,
#    imported into podman (about a minute and a half the first time, then kept in podman's storage:
#    it is made again only when this recipe's inputs change);
# 2. a Node 24 base for services/chat-node/Dockerfile (infra/images/node.Containerfile);
# 3. Redis, nginx, Prometheus, Alertmanager and the two exporters from Debian's packages
#    (infra/images/services.Containerfile), podman's layer cache making a second run take seconds.
# Needs root, podman and debootstrap (scripts/ensure.sh system podman), and the workspace installed
# (scripts/ensure.sh node: its Node 24 binary goes into the node base). CONTAINERS_CONF, when set,
# is podman's as usual. Build output goes to stderr; only the variables go to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."

PREFIX=${CHAT_TEST_IMAGE_PREFIX:-localhost/chat-test}
SUITE=bookworm
NPM_VERSION=11.19.1
CACHE=${CHAT_TEST_IMAGE_CACHE:-/var/cache/chat-test-images}
say() { printf '[images] %s\n' "$*" >&2; }

# The Debian mirror apt uses here (deb822 sources first, then sources.list).
mirror() {
  local m
  m=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || true)
  [[ -n "$m" ]] || m=$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 | awk '{print $NF}' || true)
  echo "${m:-http://deb.debian.org/debian}"
}

MIRROR=$(mirror)
BASE="$PREFIX/debian:$SUITE"
BASE_KEY=$(printf '%s\n' "$SUITE" minbase "$MIRROR" v1 | sha256sum | cut -c1-16)

if [[ "$(podman image inspect --format '{{index .Labels "chat.recipe"}}' "$BASE" 2>/dev/null || true)" != "$BASE_KEY" ]]; then
  say "debootstrap --variant=minbase $SUITE from $MIRROR"
  root=$(mktemp -d /var/tmp/chat-debootstrap.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >&2
  # The downloaded packages and the lists are not needed in the image (apt-get update refreshes them).
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
  tar -C "$root" -c . | podman import --change "LABEL chat.recipe=$BASE_KEY" --change 'CMD ["/bin/bash"]' - "$BASE" >&2
  rm -rf "$root"
  trap - EXIT
else
  say "$BASE is current"
fi

# The node base's build context: the workspace's Node binary, npm's package, the CA bundle.
ctx=$(mktemp -d /var/tmp/chat-node-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
node_bin=$(readlink -f node_modules/node/bin/node)
[[ -x "$node_bin" ]] || { say "no workspace Node at node_modules/node/bin/node: run scripts/ensure.sh node"; exit 1; }
mkdir -p "$CACHE"
if [[ ! -s "$CACHE/npm-$NPM_VERSION.tgz" ]]; then
  say "npm pack npm@$NPM_VERSION"
  (cd "$CACHE" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
fi
cp "$node_bin" "$ctx/node"
cp "$CACHE/npm-$NPM_VERSION.tgz" "$ctx/npm.tgz"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
say "building $PREFIX/node:24"
podman build --layers -q -f infra/images/node.Containerfile --build-arg "DEBIAN_IMAGE=$BASE" -t "$PREFIX/node:24" "$ctx" >&2

for target in redis nginx prometheus alertmanager nginx-exporter redis-exporter; do
  say "building $PREFIX/$target"
  podman build --layers -q -f infra/images/services.Containerfile --target "$target" --build-arg "DEBIAN_IMAGE=$BASE" -t "$PREFIX/$target:local" infra/images >&2
done

cat <<EOF
CHAT_BASE_IMAGE=$PREFIX/node:24
REDIS_IMAGE=$PREFIX/redis:local
NGINX_IMAGE=$PREFIX/nginx:local
PROMETHEUS_IMAGE=$PREFIX/prometheus:local
ALERTMANAGER_IMAGE=$PREFIX/alertmanager:local
NGINX_EXPORTER_IMAGE=$PREFIX/nginx-exporter:local
REDIS_EXPORTER_IMAGE=$PREFIX/redis-exporter:local
DEBIAN_IMAGE=$BASE
EOF

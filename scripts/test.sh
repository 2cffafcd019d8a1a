#!/usr/bin/env bash
# Runs the whole test suite (lint, typecheck, every test), installing what it needs first:
# the workspace's packages (Node 24 among them) and Debian's redis-server, nginx, prometheus,
# chromium, docker-compose and podman (the compose test's container engine). Extra arguments filter test files by substring.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure.sh node
bash scripts/ensure.sh system redis nginx prometheus chromium docker-compose podman
exec pnpm test "$@"

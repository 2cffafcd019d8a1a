#!/usr/bin/env bash
# Starts one chat node on its embedded defaults (SQLite under ./data, no Redis), installing what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure.sh node
exec pnpm start "$@"

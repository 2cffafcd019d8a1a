#!/usr/bin/env bash
# Starts one chat node on its embedded defaults (SQLite under ./data, no Redis), installing what it needs.
# Without JWT_SECRET (or JWT_PUBLIC_KEY_FILE / JWT_JWKS_URL) it is the insecure local demo, with a
# loud warning: scripts/demo-env.sh.
# The last step execs Node itself, so that this script's process becomes the node: a SIGTERM sent to
# it drains the node (npm's .bin/node shim and `sh -c` scripts would not pass the signal on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure.sh node
pnpm --filter @chat/web run --if-present build
# The same V8 options as `pnpm start` (packages/test-kit CHAT_NODE_OPTIONS); a NODE_OPTIONS you export comes after and wins.
export NODE_OPTIONS="--max-semi-space-size=32 ${NODE_OPTIONS:-}"
. scripts/demo-env.sh
exec node_modules/node/bin/node services/chat-node/src/main.ts "$@"

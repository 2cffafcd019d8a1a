# Sourced (POSIX sh) by scripts/start.sh and `pnpm start`, just before they start the node.
# With no way to verify tokens configured (JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL), no
# DEV_INSECURE_TOKENS given and NODE_ENV not production, it turns on the insecure demo mode and
# says so loudly: the first command of the README must start a node one can sign in to. Any other
# node refuses to start without a key (docs/security.md).
if [ -z "${DEV_INSECURE_TOKENS:-}" ] && [ -z "${JWT_SECRET:-}${JWT_PUBLIC_KEY_FILE:-}${JWT_JWKS_URL:-}" ]; then
  case "$(printf '%s' "${NODE_ENV:-}" | tr 'A-Z' 'a-z' | tr -d ' ')" in
    production | prod) ;;
    *)
      export DEV_INSECURE_TOKENS=1
      cat >&2 <<'BANNER'
##############################################################################
#  INSECURE DEMO MODE: no JWT_SECRET is set, so DEV_INSECURE_TOKENS=1        #
#    - POST /dev/token gives a token for ANY user id to anyone who reaches   #
#      this node, and                                                        #
#    - tokens are signed with the development secret published in the       #
#      repository: anyone can forge one.                                     #
#  The node listens on 127.0.0.1 unless HOST says otherwise. For anything    #
#  but a demo on this machine set JWT_SECRET (openssl rand -hex 32), or      #
#  JWT_JWKS_URL for your identity provider (docs/security.md).               #
##############################################################################
BANNER
      ;;
  esac
fi

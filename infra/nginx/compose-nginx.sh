#!/bin/sh
# compose's nginx: renders compose.conf from its settings, starts nginx, then follows the chat
# replicas in DNS and their /readyz, and reloads nginx when either changes (docs/cluster.md,
# "nginx in compose"). A replica whose /readyz is not 200 (full at MAX_CONNECTIONS, draining, its
# store or Redis away) is given no new clients while another replica is ready; its sessions stay.
# POSIX sh with getent, sed and sha256sum only, which Debian-based nginx images have.
#
#   compose-nginx.sh          render, run nginx, follow the replicas (the container's command)
#   compose-nginx.sh render   render once and check it with `nginx -t` (tests, a dry run)
#   compose-nginx.sh health   exit 0 when nginx answers on NGINX_STATUS_LISTEN (the healthcheck)
#
# Settings (environment):
#   CHAT_UPSTREAM_HOSTS      chat    names (or addresses) whose A records are the replicas; several
#                                    separated by spaces or commas
#   CHAT_UPSTREAM_PORT       3001    the replicas' port
#   CHAT_DISCOVERY_INTERVAL  1       seconds between lookups (1 to 60)
#   NGINX_RESOLVER           unset   nameserver address(es) for the lookups, written into this
#                                    container's resolv.conf; unset: the engine's own resolver
#   NGINX_LISTEN             8080    plain HTTP; NGINX_TLS_LISTEN 8443; NGINX_STATUS_LISTEN 8081
#   NGINX_TLS_CERT, NGINX_TLS_KEY    PEM certificate (chain) and key files: both set turns on the
#                                    TLS server; each must be a readable file
#   NGINX_WORKERS            auto    worker_processes
#   NGINX_CONF_DIR           the directory of this script (compose.conf, compose-routes.conf)
#   NGINX_RUN_DIR            /tmp/chat-nginx (rendered files, pid, temp files)
#   NGINX_BIN                nginx
# A bad setting stops the container with `nginx: configuration error: NAME ...` and exit 78.
set -eu

CONF_DIR=${NGINX_CONF_DIR:-$(cd "$(dirname "$0")" && pwd)}
RUN_DIR=${NGINX_RUN_DIR:-/tmp/chat-nginx}
NGINX=${NGINX_BIN:-nginx}
HOSTS=$(printf '%s' "${CHAT_UPSTREAM_HOSTS:-chat}" | tr ',' ' ')
PORT=${CHAT_UPSTREAM_PORT:-3001}
INTERVAL=${CHAT_DISCOVERY_INTERVAL:-1}
LISTEN=${NGINX_LISTEN:-8080}
TLS_LISTEN=${NGINX_TLS_LISTEN:-8443}
STATUS_LISTEN=${NGINX_STATUS_LISTEN:-8081}
TLS_CERT=${NGINX_TLS_CERT:-}
TLS_KEY=${NGINX_TLS_KEY:-}
WORKERS=${NGINX_WORKERS:-auto}
MIME_TYPES=${NGINX_MIME_TYPES:-/etc/nginx/mime.types}

log() { printf 'compose-nginx: %s\n' "$*" >&2; }
fail() {
  printf 'nginx: configuration error: %s\n' "$*" >&2
  exit 78
}

is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
# A listen setting: a port, or address:port (IPv4, or [IPv6]:port).
check_listen() {
  p=${2##*:}
  is_uint "$p" && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || fail "$1 must be a port or address:port, got \"$2\""
}
check_file() {
  [ -f "$2" ] || fail "$1: no such file \"$2\""
  [ -r "$2" ] || fail "$1: \"$2\" is not readable"
  [ -s "$2" ] || fail "$1: \"$2\" is empty"
}

validate() {
  [ -n "$HOSTS" ] || fail "CHAT_UPSTREAM_HOSTS is empty"
  for h in $HOSTS; do
    case "$h" in *[!A-Za-z0-9._-]*) fail "CHAT_UPSTREAM_HOSTS holds \"$h\", which is not a host name or IPv4 address" ;; esac
  done
  is_uint "$PORT" && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || fail "CHAT_UPSTREAM_PORT must be a port (1 to 65535), got \"$PORT\""
  is_uint "$INTERVAL" && [ "$INTERVAL" -ge 1 ] && [ "$INTERVAL" -le 60 ] || fail "CHAT_DISCOVERY_INTERVAL must be whole seconds from 1 to 60, got \"$INTERVAL\""
  check_listen NGINX_LISTEN "$LISTEN"
  check_listen NGINX_TLS_LISTEN "$TLS_LISTEN"
  check_listen NGINX_STATUS_LISTEN "$STATUS_LISTEN"
  [ "$WORKERS" = auto ] || { is_uint "$WORKERS" && [ "$WORKERS" -ge 1 ]; } || fail "NGINX_WORKERS must be auto or a number, got \"$WORKERS\""
  if [ -n "$TLS_CERT" ] || [ -n "$TLS_KEY" ]; then
    [ -n "$TLS_CERT" ] || fail "NGINX_TLS_KEY is set but NGINX_TLS_CERT is not: set both, or neither"
    [ -n "$TLS_KEY" ] || fail "NGINX_TLS_CERT is set but NGINX_TLS_KEY is not: set both, or neither"
    check_file NGINX_TLS_CERT "$TLS_CERT"
    check_file NGINX_TLS_KEY "$TLS_KEY"
    grep -q -- '-----BEGIN CERTIFICATE-----' "$TLS_CERT" || fail "NGINX_TLS_CERT: \"$TLS_CERT\" holds no PEM certificate"
    grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$TLS_KEY" || fail "NGINX_TLS_KEY: \"$TLS_KEY\" holds no PEM private key"
  fi
  for f in compose.conf compose-routes.conf; do check_file NGINX_CONF_DIR "$CONF_DIR/$f"; done
}

# NGINX_RESOLVER: this container's lookups (getent reads resolv.conf) go to the given nameservers.
use_resolver() {
  [ -n "${NGINX_RESOLVER:-}" ] || return 0
  conf=""
  for ns in $(printf '%s' "$NGINX_RESOLVER" | tr ',' ' '); do
    case "$ns" in *[!0-9a-fA-F.:]* | '') fail "NGINX_RESOLVER holds \"$ns\", which is not an IP address" ;; esac
    conf="${conf}nameserver $ns
"
  done
  printf '%s' "$conf" > /etc/resolv.conf || fail "NGINX_RESOLVER: cannot write /etc/resolv.conf"
}

# The replicas' IPv4 addresses, sorted, one a line (none while DNS has none).
discover() {
  for h in $HOSTS; do
    getent ahostsv4 "$h" 2>/dev/null | while read -r addr _; do echo "$addr"; done
  done | sort -u -t . -k1,1n -k2,2n -k3,3n -k4,4n
}

# The replicas of "$1" whose GET /readyz does not answer 200 within a second, space-separated.
# bash's /dev/tcp, as the healthcheck: no curl or wget in the image.
not_ready() {
  for a in $1; do
    timeout 1 bash -c 'exec 3<>/dev/tcp/'"$a"'/'"$PORT"' && printf "GET /readyz HTTP/1.0\r\nHost: nginx\r\n\r\n" >&3 && read -r status <&3 && case "$status" in *" 200 "*) exit 0 ;; esac; exit 1' 2>/dev/null || printf '%s ' "$a"
  done
}

# The cookie token of a replica: opaque (no address leaves nginx), stable across reloads.
token() { printf '%s %s:%s' "$(cat "$RUN_DIR/salt")" "$1" "$PORT" | sha256sum | cut -c1-16; }

# write_upstreams ADDRESSES NOT_READY: new clients (the placement upstream `chat`, and a handshake
# whose cookie names a replica that is not ready) go only to ready replicas, unless none is ready:
# then to every replica, whose own answers (503 to a handshake while draining) nginx passes on.
write_upstreams() {
  out="$RUN_DIR/upstreams.conf.new"
  placeable=""
  for a in $1; do case " $2 " in *" $a "*) ;; *) placeable="$placeable $a" ;; esac; done
  [ -n "$placeable" ] || set -- "$1" ""
  {
    echo "# Written by compose-nginx.sh from the A records of: $HOSTS (port $PORT)."
    echo "upstream chat {"
    echo "    zone chat_place 64k;"
    echo "    least_conn;"
    if [ -z "$1" ]; then
      echo "    server 127.0.0.1:$PORT down; # no replica in DNS"
    fi
    for a in $1; do
      case " $2 " in
        *" $a "*) echo "    server $a:$PORT max_fails=0 down; # not ready: no new clients" ;;
        *) echo "    server $a:$PORT max_fails=0;" ;;
      esac
    done
    echo "}"
    for a in $1; do
      echo "upstream chat_$(token "$a") {"
      echo "    server $a:$PORT max_fails=0;"
      for b in $1; do [ "$b" = "$a" ] || echo "    server $b:$PORT max_fails=0 backup;"; done
      echo "}"
    done
    # Keyed by cookie and sid: a session's requests (sid set) always reach its replica; a new
    # handshake or a REST call (no sid) follows the cookie only to a ready replica.
    echo "map \"\$cookie_chat_sticky|\$arg_sid\" \$chat_pinned {"
    echo "    default chat;"
    for a in $1; do
      t=$(token "$a")
      case " $2 " in *" $a "*) echo "    \"$t|\" chat;" ;; esac
      echo "    \"~^$t\\|\" chat_$t;"
    done
    echo "}"
    echo "map \$upstream_addr \$chat_answered {"
    echo "    volatile;"
    echo "    default \"\";"
    for a in $1; do echo "    \"~(^|, )$(printf '%s' "$a" | sed 's/\./\\./g'):$PORT\$\" $(token "$a");"; done
    echo "}"
  } > "$out"
  mv "$out" "$RUN_DIR/upstreams.conf"
}

write_tls() {
  if [ -z "$TLS_CERT" ]; then
    echo "# TLS is off: NGINX_TLS_CERT and NGINX_TLS_KEY are unset." > "$RUN_DIR/tls.conf"
    return
  fi
  cat > "$RUN_DIR/tls.conf" <<EOF
# TLS from NGINX_TLS_CERT and NGINX_TLS_KEY (compose-nginx.sh).
server {
    listen $TLS_LISTEN ssl;
    ssl_certificate $TLS_CERT;
    ssl_certificate_key $TLS_KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:chat_tls:10m;
    ssl_session_timeout 1h;
    ssl_session_tickets off;
    include $CONF_DIR/compose-routes.conf;
}
EOF
}

render() {
  mkdir -p "$RUN_DIR/tmp/body" "$RUN_DIR/tmp/proxy" "$RUN_DIR/tmp/fastcgi" "$RUN_DIR/tmp/uwsgi" "$RUN_DIR/tmp/scgi"
  [ -s "$RUN_DIR/salt" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$RUN_DIR/salt"
  sed -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@CONF_DIR@|$CONF_DIR|g" -e "s|@LISTEN@|$LISTEN|g" \
      -e "s|@STATUS_LISTEN@|$STATUS_LISTEN|g" -e "s|@WORKERS@|$WORKERS|g" -e "s|@MIME_TYPES@|$MIME_TYPES|g" \
      "$CONF_DIR/compose.conf" > "$RUN_DIR/nginx.conf"
  write_tls
  write_upstreams "$1" "$2"
}

check() { "$NGINX" -t -q -c "$RUN_DIR/nginx.conf" -e stderr; }

health() {
  # bash's /dev/tcp: Debian-based images have bash, and neither curl nor wget is needed.
  exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"${STATUS_LISTEN##*:}"' && printf "GET /nginx-health HTTP/1.0\r\n\r\n" >&3 && read -r status <&3 && case "$status" in *" 200 "*) exit 0 ;; esac; exit 1'
}

case "${1:-run}" in
  health) health ;;
  render)
    validate
    addrs=$(discover | tr '\n' ' ')
    render "$addrs" "$(not_ready "$addrs")"
    check
    exit 0
    ;;
  run) ;;
  *) echo "usage: compose-nginx.sh [run|render|health]" >&2; exit 2 ;;
esac

validate
use_resolver
current=$(discover | tr '\n' ' ')
held=$(not_ready "$current")
render "$current" "$held"
check || fail "nginx -t refused the rendered configuration (above)"
log "replicas: ${current:-none}; not ready: ${held:-none}"
"$NGINX" -c "$RUN_DIR/nginx.conf" -e stderr -g 'daemon off;' &
nginx_pid=$!

stop() {
  kill -TERM "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  exit 0
}
trap stop TERM INT
trap 'kill -QUIT "$nginx_pid" 2>/dev/null || true' QUIT

while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep "$INTERVAL" &
  wait $! || true
  next=$(discover | tr '\n' ' ')
  next_held=$(not_ready "$next")
  [ "$next" = "$current" ] && [ "$next_held" = "$held" ] && continue
  write_upstreams "$next" "$next_held"
  if check; then
    log "replicas: ${next:-none} (were: ${current:-none}); not ready: ${next_held:-none} (were: ${held:-none}); reloading"
    kill -HUP "$nginx_pid"
    current=$next
    held=$next_held
  else
    log "nginx -t refused the new upstreams; keeping the running configuration"
  fi
done
wait "$nginx_pid"

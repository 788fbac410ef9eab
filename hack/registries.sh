#!/usr/bin/env bash
# Runs the local Docker registries the integration tests pull from (tests
# cannot reach the internet, so every image they need lives here):
#   plain    127.0.0.1:5000  no auth, deletes enabled
#   auth     127.0.0.1:5001  htpasswd basic auth, user ucr / password ucr-secret
#   schema1  127.0.0.1:5002  accepts signed schema1 manifests
#   token    127.0.0.1:5003  bearer token auth: tokens from the token server
#                            below, for user ucr / password ucr-secret
# and the token server of the last one (hack/token-server.py):
#   token-server 127.0.0.1:5004  GET/POST /token
# Each keeps its storage, config, pid file and log under
# ${UCR_TEST_DIR:-/var/lib/ucr-test}/registry/<name>{/,.yml,.pid,.log}; the
# token signing key and certificate (the token registry's rootcertbundle) are
# registry/token/{key,cert}.pem, next to that registry's docker/ storage.
# All are detached (own session, no stdio) and outlive this script.
#
# usage: hack/registries.sh start|stop|status
set -euo pipefail

UCR_TEST_DIR=${UCR_TEST_DIR:-/var/lib/ucr-test}
dir="$UCR_TEST_DIR/registry"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tokdir="$dir/token"
instances=(plain:5000 auth:5001 schema1:5002 token:5003 token-server:5004)

# The path each one answers on: GET /v2/ of a registry, GET /token (401
# without credentials) of the token server.
probe_path() { if [[ $1 == token-server ]]; then echo /token; else echo /v2/; fi; }

# Sets cmd to the command line that runs instance $1.
command_of() {
  case $1 in
    # Debian's python3, which sees python3-jwt: not a pyenv/venv one in PATH.
    token-server) cmd=(/usr/bin/python3 "$here/token-server.py" serve "$tokdir" --listen 127.0.0.1:5004) ;;
    *) cmd=(docker-registry serve "$dir/$1.yml") ;;
  esac
}

# Prints the HTTP status of instance $1 on port $2 (000 when nothing answers).
http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$2$(probe_path "$1")" || true
}

answering() { [[ "$(http_code "$1" "$2")" =~ ^(200|401)$ ]]; }

# Prints the pid from <name>.pid if that process is still our instance (a
# stale pid file could otherwise name an unrelated, recycled pid).
live_pid() {
  local pid pattern
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # Not the whole command line: the token server's includes this checkout's path.
  if [[ $1 == token-server ]]; then pattern="token-server.py serve $tokdir "; else pattern="docker-registry serve $dir/$1.yml"; fi
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$pattern" || return 1
  echo "$pid"
}

write_config() {
  local name=$1 port=$2 extra=""
  case $name in
    auth)
      # Regenerated every start so the password is always the documented one.
      htpasswd -Bbn ucr ucr-secret >"$dir/auth.htpasswd"
      extra="auth:
  htpasswd:
    realm: ucr-test
    path: $dir/auth.htpasswd" ;;
    schema1)
      # distribution >= 2.7 rejects schema1 pushes unless this is enabled.
      extra="compatibility:
  schema1:
    enabled: true" ;;
    token)
      # issuer and service must match the tokens' iss and aud (token-server.py).
      extra="auth:
  token:
    realm: http://127.0.0.1:5004/token
    service: ucr-test-registry
    issuer: ucr-test-issuer
    rootcertbundle: $tokdir/cert.pem" ;;
  esac
  # inmemory blob-descriptor cache: no redis. A fixed http.secret: otherwise
  # each instance makes a random one and logs a warning about it.
  cat >"$dir/$name.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/$name
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: ucr-test-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
$extra
EOF
}

start() {
  mkdir -p "$dir"
  local inst name port cmd
  # The signing key and certificate, before the token registry reads the
  # certificate. A token registry or server started before they were last
  # (re)generated would reject or sign with the old ones: restart those.
  /usr/bin/python3 "$here/token-server.py" keygen "$tokdir"
  for name in token token-server; do
    if [[ -e "$dir/$name.pid" && "$tokdir/cert.pem" -nt "$dir/$name.pid" ]]; then
      stop_one "$name"
    fi
  done
  for inst in "${instances[@]}"; do
    name=${inst%%:*} port=${inst##*:}
    if answering "$name" "$port"; then
      live_pid "$name" >/dev/null ||
        echo "registries: WARNING: 127.0.0.1:$port answers but is not our $name instance" \
             "(Debian's docker-registry.service? see hack/install-deps.sh)" >&2
      echo "registries: $name already running on 127.0.0.1:$port"
      continue
    fi
    if [[ $name != token-server ]]; then
      mkdir -p "$dir/$name"
      write_config "$name" "$port"
    fi
    command_of "$name"
    # setsid: own session, so no SIGHUP/SIGINT from the caller's terminal or
    # process group reaches it. The inner shell records its own pid and execs,
    # so the pid file is right whether or not setsid had to fork.
    # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
    nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' \
      _ "$dir/$name.pid" "${cmd[@]}" </dev/null >>"$dir/$name.log" 2>&1 &
  done
  for inst in "${instances[@]}"; do
    name=${inst%%:*} port=${inst##*:}
    for _ in $(seq 100); do answering "$name" "$port" && break; sleep 0.2; done
    if ! answering "$name" "$port"; then
      echo "registries: ERROR: $name did not answer on 127.0.0.1:$port within 20 s; log:" >&2
      tail -n 20 "$dir/$name.log" >&2 || true
      exit 1
    fi
  done
  status || true
}

stop_one() {
  local pid
  if pid=$(live_pid "$1"); then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "registries: stopped $1 (pid $pid)"
  else
    echo "registries: $1 not running"
  fi
  rm -f "$dir/$1.pid"
}

stop() {
  local inst
  for inst in "${instances[@]}"; do stop_one "${inst%%:*}"; done
}

status() {
  local inst name port pid rc=0
  for inst in "${instances[@]}"; do
    name=${inst%%:*} port=${inst##*:}
    pid=$(live_pid "$name") || { pid=-; rc=1; }
    printf '%-12s 127.0.0.1:%s  pid %-8s GET %-6s -> %s\n' "$name" "$port" "$pid" \
      "$(probe_path "$name")" "$(http_code "$name" "$port")"
  done
  return $rc
}

case "${1:-}" in
  start|stop|status) "$1" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

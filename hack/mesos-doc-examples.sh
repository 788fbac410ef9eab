#!/usr/bin/env bash
# Runs the agent calls of Mesos's operator API documentation (docs/operator-http-api.md:
# the request bodies' shapes, with its ids) against a running ucr with curl, and checks
# each status. Not a test of CI's: evidence for the README's daemon, repeatable by hand.
#
# usage: hack/mesos-doc-examples.sh [URL] [IMAGE]
#   URL    the Mesos door (default http://127.0.0.1:5051)
#   IMAGE  an image with a shell (default 127.0.0.1:5000/ucr-test/busybox:latest)
set -euo pipefail

url=${1:-http://127.0.0.1:5051}/api/v1
image=${2:-127.0.0.1:5000/ucr-test/busybox:latest}
root=bde04877-cb26-4277-976e-3ecf0c02e76b
mid=f5015d94-8093-477d-9551-9452acfad495
leaf=3192b9d1-db71-4699-ae25-e28dfbf42de1
failed=0

# call NAME EXPECTED-STATUS BODY [curl args...]: prints the status and the body's start.
# JSON both ways unless the extra arguments say otherwise (CT=, ACCEPT=).
call() {
  local name=$1 want=$2 body=$3
  shift 3
  local out status
  out=$(mktemp)
  status=$(curl -s -o "$out" -w '%{http_code}' -X POST "$url" \
    -H "Content-Type: ${CT:-application/json}" -H "Accept: ${ACCEPT:-application/json}" \
    "$@" --data-binary "$body" || true)
  printf '%-34s %s %s\n' "$name" "$status" "$(head -c 160 "$out" | tr '\n' ' ')"
  if [[ $status != "$want" ]]; then
    echo "  expected $want" >&2
    failed=1
  fi
  rm -f "$out"
}

# A RecordIO record: the length in bytes, a newline, the bytes.
record() { printf '%d\n%s' "$(printf '%s' "$1" | wc -c)" "$1"; }

call GET_HEALTH 200 '{"type": "GET_HEALTH"}'
call GET_FLAGS 200 '{"type": "GET_FLAGS"}'
call GET_VERSION 200 '{"type": "GET_VERSION"}'
call GET_METRICS 200 '{"type": "GET_METRICS", "get_metrics": {"timeout": {"nanoseconds": 5000000000}}}'

call LAUNCH_CONTAINER 200 "{\"type\": \"LAUNCH_CONTAINER\", \"launch_container\": {
  \"container_id\": {\"value\": \"$root\"},
  \"command\": {\"value\": \"cat\"},
  \"container\": {\"type\": \"MESOS\", \"tty_info\": {},
                  \"mesos\": {\"image\": {\"type\": \"DOCKER\", \"docker\": {\"name\": \"$image\"}}}},
  \"resources\": [{\"name\": \"cpus\", \"type\": \"SCALAR\", \"scalar\": {\"value\": 0.5}},
                  {\"name\": \"mem\", \"type\": \"SCALAR\", \"scalar\": {\"value\": 64}}]}}"
call LAUNCH_NESTED_CONTAINER 200 "{\"type\": \"LAUNCH_NESTED_CONTAINER\", \"launch_nested_container\": {
  \"container_id\": {\"parent\": {\"value\": \"$root\"}, \"value\": \"$mid\"},
  \"command\": {\"shell\": true, \"value\": \"sleep 1000\"}}}"
call "LAUNCH_NESTED_CONTAINER (3 deep)" 200 "{\"type\": \"LAUNCH_NESTED_CONTAINER\", \"launch_nested_container\": {
  \"container_id\": {\"parent\": {\"parent\": {\"value\": \"$root\"}, \"value\": \"$mid\"}, \"value\": \"$leaf\"},
  \"command\": {\"environment\": {\"variables\": [{\"name\": \"ENV_VAR_KEY\", \"type\": \"VALUE\", \"value\": \"env_var_value\"}]},
                \"shell\": true, \"value\": \"exit 0\"}}}"
call GET_CONTAINERS 200 '{"type": "GET_CONTAINERS", "get_containers": {"show_nested": true, "show_standalone": true}}'
call WAIT_NESTED_CONTAINER 200 "{\"type\": \"WAIT_NESTED_CONTAINER\", \"wait_nested_container\": {
  \"container_id\": {\"parent\": {\"parent\": {\"value\": \"$root\"}, \"value\": \"$mid\"}, \"value\": \"$leaf\"}}}"
call KILL_NESTED_CONTAINER 200 "{\"type\": \"KILL_NESTED_CONTAINER\", \"kill_nested_container\": {
  \"container_id\": {\"parent\": {\"value\": \"$root\"}, \"value\": \"$mid\"}}}"

# A session lives as long as its connection: curl gives up after 3 s, which ends it.
ACCEPT=application/recordio call LAUNCH_NESTED_CONTAINER_SESSION 200 "{\"type\": \"LAUNCH_NESTED_CONTAINER_SESSION\", \"launch_nested_container_session\": {
  \"container_id\": {\"parent\": {\"value\": \"$root\"}, \"value\": \"e193a755-8528-4673-a05b-2cc2a01a8b94\"},
  \"command\": {\"environment\": {\"variables\": [{\"name\": \"ENV_VAR_KEY\", \"type\": \"VALUE\", \"value\": \"env_var_value\"}]},
                \"shell\": true, \"value\": \"while [ true ]; do echo \$(date); sleep 1; done\"}}}" \
  -H 'Message-Accept: application/json' --max-time 3

input=$(record "{\"type\": \"ATTACH_CONTAINER_INPUT\", \"attach_container_input\": {\"type\": \"CONTAINER_ID\", \"container_id\": {\"value\": \"$root\"}}}"
        record '{"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": {"type": "PROCESS_IO", "process_io": {"type": "DATA", "data": {"type": "STDIN", "data": "dGVzdAo="}}}}'
        record '{"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": {"type": "PROCESS_IO", "process_io": {"type": "CONTROL", "control": {"type": "HEARTBEAT", "heartbeat": {"interval": {"nanoseconds": 30000000000}}}}}}')
CT=application/recordio call ATTACH_CONTAINER_INPUT 200 "$input" \
  -H 'Message-Content-Type: application/json'
ACCEPT=application/recordio call ATTACH_CONTAINER_OUTPUT 200 "{\"type\": \"ATTACH_CONTAINER_OUTPUT\", \"attach_container_output\": {\"container_id\": {\"value\": \"$root\"}}}" \
  -H 'Message-Accept: application/json' --max-time 2
call LIST_FILES 200 "{\"type\": \"LIST_FILES\", \"list_files\": {\"path\": \"/containers/$root\"}}"
call READ_FILE 200 "{\"type\": \"READ_FILE\", \"read_file\": {\"length\": 6, \"offset\": 0, \"path\": \"/containers/$root/stdout\"}}"

call KILL_CONTAINER 200 "{\"type\": \"KILL_CONTAINER\", \"kill_container\": {\"container_id\": {\"value\": \"$root\"}}}"
call WAIT_CONTAINER 200 "{\"type\": \"WAIT_CONTAINER\", \"wait_container\": {\"container_id\": {\"value\": \"$root\"}}}"
call REMOVE_CONTAINER 200 "{\"type\": \"REMOVE_CONTAINER\", \"remove_container\": {\"container_id\": {\"value\": \"$root\"}}}"
call PRUNE_IMAGES 200 '{"type": "PRUNE_IMAGES", "prune_images": {"excluded_images": [{"type": "DOCKER", "docker": {"name": "busybox"}}]}}'
call "GET_CONTAINERS (none left)" 200 '{"type": "GET_CONTAINERS", "get_containers": {"show_nested": true, "show_standalone": true}}'

# The legacy GET endpoints.
for path in /health /version /flags /state /monitor/statistics /monitor/statistics.json \
            /containers /metrics/snapshot; do
  out=$(mktemp)
  status=$(curl -s -o "$out" -w '%{http_code}' "${url%/api/v1}$path" || true)
  printf '%-34s %s %s\n' "GET $path" "$status" "$(head -c 120 "$out" | tr '\n' ' ')"
  [[ $status == 200 ]] || { echo "  expected 200" >&2; failed=1; }
  rm -f "$out"
done

if ((failed)); then
  echo "mesos-doc-examples: some calls did not answer as expected" >&2
  exit 1
fi
echo "mesos-doc-examples: every call answered as expected" >&2

#!/usr/bin/env bash
# Benchmark (not a test): cold pull of a multi-layer image of 4 x 30 MiB incompressible
# layers plus busybox (~127 MB compressed) from the loopback registry, by ucr and, for
# scale, by `skopeo copy` into a directory. Each is run RUNS times on an empty store;
# prints seconds and MB/s per run and the medians.
#
# usage: hack/bench-pull.sh [RUNS]     (needs root; builds the release binary)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-3}

eval "$(hack/test-env.sh --big)"
cargo build --release --locked -q
image=127.0.0.1:5000/ucr-test/big:latest
bytes=$(curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://127.0.0.1:5000/v2/ucr-test/big/manifests/latest" | jq '[.layers[].size] | add')
mb=$(echo "$bytes / 1000000" | bc -l)
work=$(mktemp -d /var/tmp/ucr-bench.XXXXXX)
trap 'kill $daemon 2>/dev/null || true; rm -rf "$work"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
report() { printf '%-6s run %d: %6.2f s  %7.1f MB/s\n' "$1" "$2" "$3" "$(echo "$mb / $3" | bc -l)"; }

ucr_times=()
for i in $(seq "$runs"); do
  rm -rf "$work/root" "$work/run"
  ./target/release/ucr serve --root "$work/root" --run-root "$work/run" \
    --listen "$work/ucr.sock" --mesos-listen "" --log-level warn & daemon=$!
  for _ in $(seq 100); do [ -S "$work/ucr.sock" ] && break; sleep 0.05; done
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  start=$(date +%s.%N)
  ./target/release/ucr pull --listen "$work/ucr.sock" "$image" >/dev/null
  t=$(echo "$(date +%s.%N) - $start" | bc -l)
  kill "$daemon"; wait "$daemon" 2>/dev/null || true
  report ucr "$i" "$t"; ucr_times+=("$t")
done

skopeo_times=()
for i in $(seq "$runs"); do
  rm -rf "$work/skopeo"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  start=$(date +%s.%N)
  skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$image" "dir:$work/skopeo"
  t=$(echo "$(date +%s.%N) - $start" | bc -l)
  report skopeo "$i" "$t"; skopeo_times+=("$t")
done

u=$(printf '%s\n' "${ucr_times[@]}" | median)
s=$(printf '%s\n' "${skopeo_times[@]}" | median)
printf '\nimage %s, %.1f MB compressed\n' "$image" "$mb"
printf 'median ucr pull (download + verify + unpack): %.2f s, %.1f MB/s\n' "$u" "$(echo "$mb / $u" | bc -l)"
printf 'median skopeo copy to dir (download only):   %.2f s, %.1f MB/s\n' "$s" "$(echo "$mb / $s" | bc -l)"

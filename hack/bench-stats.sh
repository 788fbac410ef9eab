#!/usr/bin/env bash
# Benchmark (not a test): how long the stats calls take with N running containers. A
# fresh `ucr serve` on a temporary root; `ucr-bench --hold N --stats ROUNDS` starts N pods
# with one running container each (`sleep 3600` in busybox), then times
# ListContainerStats and ListPodSandboxStats ROUNDS times each (every figure read from
# the kernel's cgroup files and, for pods, netlink in the pod's namespace), and removes
# the pods. kubelet asks for both every 10-15 s on a busy node; the target is "well
# under a second" for 100 pods.
#
# usage: hack/bench-stats.sh [N] [ROUNDS]   (default 100 and 20; needs root; builds the
#                                            release binary)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-100}
rounds=${2:-20}
[ "$(id -u)" = 0 ] || { echo "bench-stats.sh: needs root (namespaces, mounts, cgroups)" >&2; exit 1; }

eval "$(hack/test-env.sh)"
cargo build --release --locked -q
ucr=$PWD/target/release/ucr
bench=$PWD/target/release/ucr-bench
work=$(mktemp -d /var/tmp/ucr-bench-stats.XXXXXX)
root_name=ucr-bench-$(basename "$work")
daemon=''
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  "$ucr" serve --root "$work/root" --run-root "$work/run" --listen "$work/cleanup.sock" \
    --cgroups-root "$root_name" --recover cleanup >/dev/null 2>&1 || true
  for h in /sys/fs/cgroup/*/"$root_name"; do [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
"$ucr" serve --root "$work/root" --run-root "$work/run" --listen "$work/ucr.sock" \
  --cgroups-root "$root_name" >"$work/ucr.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do [ -S "$work/ucr.sock" ] && break; sleep 0.05; done
"$bench" --listen "$work/ucr.sock" --image 127.0.0.1:5000/ucr-test/busybox:latest \
  --hold "$n" --parallel 4 --stats "$rounds"

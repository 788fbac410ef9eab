#!/usr/bin/env bash
# Benchmark (not a test): the pod and container lifecycle over the CRI. A fresh
# `ucr serve` on a temporary root; `ucr-bench` runs PODS pods through RunPodSandbox,
# CreateContainer, StartContainer (`sleep 3600` in busybox), StopContainer (timeout 0:
# SIGKILL at once, so the figure is the runtime's and not the grace period's),
# RemoveContainer, StopPodSandbox and RemovePodSandbox, timing each call client-side,
# first one pod at a time and then 4 at a time. Then it holds 20 pods with a running
# container, sharing their process namespace, and measures the daemon's memory, each
# monitor's (`ucr-monitor`) and each pod init's (`ucr-pod-init`).
#
# For scale, on this 2-core machine Debian's containerd 1.6 with runc takes about 99 ms
# to run a pod sandbox and 66 ms to start a container (medians); ucr's targets are
# < 20 ms and < 10 ms, < 1 MiB per monitor and well under 100 KiB per pod init
# (containerd's pause container: about 3.6 MiB with its shim).
#
# usage: hack/bench-runtime.sh [PODS]     (default 100; needs root; builds the release binary)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pods=${1:-100}
held=20
[ "$(id -u)" = 0 ] || { echo "bench-runtime.sh: needs root (namespaces, mounts)" >&2; exit 1; }

eval "$(hack/test-env.sh)"
cargo build --release --locked -q
# The build leaves much dirty data, which the first syncfs (an overlay unmount does one)
# would otherwise flush inside a timed RemoveContainer.
sync
ucr=$PWD/target/release/ucr
bench=$PWD/target/release/ucr-bench
image=127.0.0.1:5000/ucr-test/busybox:latest
work=$(mktemp -d /var/tmp/ucr-bench-runtime.XXXXXX)
run=$work/run
sock=$work/ucr.sock
daemon='' hold_pid='' hold_fd=''

# Mount points under $work, deepest first (mountinfo field 5).
mounts_left() { awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
# Pids of the `ucr monitor` processes of this run root.
monitors() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue   # it may be gone
    case $cmd in *" monitor --bundle $run/"* | *"ucr-monitor --bundle $run/"*) echo "${p#/proc/}" ;; esac
  done
}
# Pids of the pod inits of this run root (`<run>/pods/<id>/init.pid`: pid, start time).
pod_inits() {
  local f
  for f in "$run"/pods/*/init.pid; do [ -f "$f" ] && cut -d' ' -f1 "$f"; done
}
# Appends a process's VmRSS, Pss and private (USS) KiB to PREFIX-rss, -pss and -uss.
measure() {
  kib "/proc/$1/status" VmRSS >>"$2-rss"
  if [ -r "/proc/$1/smaps_rollup" ]; then
    kib "/proc/$1/smaps_rollup" Pss >>"$2-pss"
    # Private pages: what one more such process costs.
    awk '$1 ~ /^Private_(Clean|Dirty):$/ {s += $2} END {print s}' "/proc/$1/smaps_rollup" >>"$2-uss"
  fi
}
cleanup() {
  set +e
  if [ -n "$hold_fd" ]; then exec {hold_fd}>&-; fi        # end of input: pods are removed
  if [ -n "$hold_pid" ]; then wait "$hold_pid"; fi
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; fi
  # After a failure: containers outlive the daemon; kill them so their monitors exit.
  # (A pid file says `<pid> <start time>`.)
  for f in "$run"/containers/*/pid; do [ -f "$f" ] && kill -9 "$(cut -d' ' -f1 "$f")" 2>/dev/null; done
  for p in $(pod_inits); do kill -9 "$p" 2>/dev/null; done
  mounts_left | xargs -r umount -l
  ip link del ucrbench0 2>/dev/null
  rm -rf "$work" /var/lib/cni/networks/ucr-bench
}
trap cleanup EXIT

kib() { awk -v k="$2:" '$1 == k {print $2}' "$1" 2>/dev/null; }   # a "Key: N kB" field
mib() { echo "scale=2; $1 / 1024" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Pods are networked as on a node: a bridge network of the bench's own (ADD and DEL of
# bridge, portmap and bandwidth are part of RunPodSandbox and StopPodSandbox).
UCR_POD_SUBNET=10.217.0.0/16 UCR_POD_BRIDGE=ucrbench0 UCR_POD_NETWORK=ucr-bench \
  hack/cni-default.sh "$work/net.d" >&2
"$ucr" serve --root "$work/root" --run-root "$run" --listen "$sock" --log-level warn \
  --cni-conf-dir "$work/net.d" --cni-bin-dir /usr/lib/cni \
  2>"$work/daemon.log" & daemon=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$work/daemon.log" >&2; echo "ucr serve did not start" >&2; exit 1; }
sleep 1
rss_start=$(kib "/proc/$daemon/status" VmRSS)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== $pods pods, one at a time" >&2
"$bench" --listen "$sock" --image "$image" --pods "$pods" --parallel 1 | tee "$work/seq.txt"
echo "== $pods pods, 4 at a time" >&2
"$bench" --listen "$sock" --image "$image" --pods "$pods" --parallel 4 | tee "$work/par.txt"
sleep 1
rss_idle=$(kib "/proc/$daemon/status" VmRSS)

echo "== holding $held pods" >&2
mkfifo "$work/hold.in"
"$bench" --listen "$sock" --image "$image" --hold "$held" --parallel 4 \
  <"$work/hold.in" >"$work/hold.out" 2>&1 & hold_pid=$!
exec {hold_fd}>"$work/hold.in"
for _ in $(seq 1200); do
  grep -q '^holding' "$work/hold.out" && break
  kill -0 "$hold_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^holding' "$work/hold.out" || { cat "$work/hold.out" >&2; exit 1; }
sleep 1
rss_held=$(kib "/proc/$daemon/status" VmRSS)
mapfile -t mons < <(monitors)
mapfile -t inits < <(pod_inits)
: >"$work/mon-rss"; : >"$work/mon-pss"; : >"$work/mon-uss"
: >"$work/init-rss"; : >"$work/init-pss"; : >"$work/init-uss"
for m in "${mons[@]}"; do measure "$m" "$work/mon"; done
for i in "${inits[@]}"; do measure "$i" "$work/init"; done
exec {hold_fd}>&-; hold_fd=''
wait "$hold_pid"; hold_pid=''
grep -q '^released' "$work/hold.out" || { cat "$work/hold.out" >&2; exit 1; }
sleep 1
rss_after=$(kib "/proc/$daemon/status" VmRSS)

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=''
left_mounts=$(mounts_left); left_monitors=$(monitors)
left_veths=$(ls /sys/class/net/ucrbench0/brif 2>/dev/null | tr '\n' ' ')

mon_n=$(wc -l <"$work/mon-rss")
summary() {
  local f=$1 call=$2
  awk -v c="$call" '$1 == c {print $3}' "$f"
}
echo
echo "=== ucr lifecycle benchmark: $pods pods, image $image, $(nproc) CPUs"
echo "load average when timing began: $load_before; at the end: $load_after (1, 5, 15 min; other work on the machine skews the figures)"
echo "--- one at a time"; cat "$work/seq.txt"
echo "--- 4 at a time"; cat "$work/par.txt"
echo "--- medians against targets (containerd 1.6 + runc here: ~99 ms and ~66 ms)"
for mode in seq par; do
  printf '%-16s RunPodSandbox %6.2f ms (target < 20)   StartContainer %6.2f ms (target < 10)\n' \
    "$([ $mode = seq ] && echo 'one at a time:' || echo '4 at a time:')" \
    "$(summary "$work/$mode.txt" RunPodSandbox)" "$(summary "$work/$mode.txt" StartContainer)"
done
echo "--- memory (VmRSS of the daemon)"
printf 'daemon idle at start:                 %8s MiB\n' "$(mib "$rss_start")"
printf 'daemon idle after %4d pods:          %8s MiB\n' "$((2 * pods))" "$(mib "$rss_idle")"
printf 'daemon with %d running containers:    %8s MiB\n' "$held" "$(mib "$rss_held")"
printf 'daemon per running container:         %8s KiB  ((with %d - idle) / %d)\n' \
  "$(echo "scale=1; ($rss_held - $rss_idle) / $held" | bc -l)" "$held" "$held"
printf 'daemon after releasing them:          %8s MiB\n' "$(mib "$rss_after")"
echo "--- memory of the $mon_n monitor processes (target < 1 MiB)"
if [ "$mon_n" -gt 0 ]; then
  printf 'monitor VmRSS median %s KiB, max %s KiB\n' \
    "$(median <"$work/mon-rss")" "$(sort -g "$work/mon-rss" | tail -1)"
  if [ -s "$work/mon-pss" ]; then
    printf 'monitor Pss   median %s KiB, max %s KiB  (RSS counts the shared pages of the binary)\n' \
      "$(median <"$work/mon-pss")" "$(sort -g "$work/mon-pss" | tail -1)"
    printf 'monitor private (USS) median %s KiB, max %s KiB  (the cost of one more monitor)\n' \
      "$(median <"$work/mon-uss")" "$(sort -g "$work/mon-uss" | tail -1)"
  fi
fi
init_n=$(wc -l <"$work/init-rss")
echo "--- memory of the $init_n pod inits (target well under 100 KiB)"
if [ "$init_n" -gt 0 ]; then
  printf 'pod init VmRSS median %s KiB, Pss median %s KiB, private median %s KiB\n' \
    "$(median <"$work/init-rss")" "$(median <"$work/init-pss")" "$(median <"$work/init-uss")"
  printf 'per pod (monitor Pss + pod init Pss): %s KiB\n' \
    "$(( $(median <"$work/mon-pss") + $(median <"$work/init-pss") ))"
fi
echo "--- leftovers"
if [ -n "$left_mounts" ] || [ -n "$left_monitors" ] || [ -n "$left_veths" ]; then
  echo "LEFT BEHIND: mounts [$left_mounts] monitors [$left_monitors] veths [$left_veths]"
  exit 1
fi
echo "none: no mounts under $work, no monitors, no veths on ucrbench0"

#!/usr/bin/env bash
# The README's first command: installs what ucr needs on a fresh Debian machine, builds
# it, and runs the daemon in the foreground with its defaults (state in /var/lib/ucr and
# /run/ucr, CRI socket /run/ucr/ucr.sock), pods networked through the first CNI config
# in /etc/cni/net.d (a default bridge network is written there when it has none).
# Extra arguments go to `ucr serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hack/install-deps.sh
hack/cni-default.sh
cargo build --release --locked
exec ./target/release/ucr serve "$@"

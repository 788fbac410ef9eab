#!/usr/bin/env bash
# The README's test command: prepares a fresh Debian machine for the tests (packages,
# local registries, test images), then runs the layering check, the formatting check,
# clippy and every test.
# Run as root: the tests mount filesystems and write overlay whiteouts.
#
# usage: hack/test.sh [extra args for the test runner]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

eval "$(hack/test-env.sh)"
# A one-off build gains nothing from incremental caches, which double the target size.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== layering" >&2
hack/check-layers.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
# --all-features: the crash-points feature (test-only) is checked too.
cargo clippy --all-targets --all-features --locked -- -D warnings

echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
  # Integration tests each start their own daemon; two cores, so keep parallelism modest.
  # crash-points: the kill -9 tests (test/crashes.rs) need the daemon's crash points.
  cargo nextest run --locked --features crash-points --test-threads 4 --no-fail-fast "$@"
else
  cargo test --locked --features crash-points --no-fail-fast "$@"
fi

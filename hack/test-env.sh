#!/usr/bin/env bash
# Prepares everything the integration tests need on this machine: test
# packages, the local registries and the test images in them. Progress goes to
# stderr; stdout is only `export` lines, so use it as
#   eval "$(hack/test-env.sh)"
# Extra arguments go to build-test-images.sh (e.g. --big).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export UCR_TEST_DIR=${UCR_TEST_DIR:-/var/lib/ucr-test}
mkdir -p "$UCR_TEST_DIR"
UCR_TEST_DIR=$(cd "$UCR_TEST_DIR" && pwd)   # tests may chdir: make it absolute

"$here/install-deps.sh" --test >&2
"$here/registries.sh" start >&2
"$here/build-test-images.sh" "$@" >&2
# helm and kubectl for the chart test (test/chart.rs).
tools=$("$here/install-helm.sh" "$UCR_TEST_DIR/tools")

printf 'export %s=%q\n' \
  UCR_TEST_DIR "$UCR_TEST_DIR" \
  UCR_HELM "$tools/helm" \
  UCR_KUBECTL "$tools/kubectl" \
  UCR_TEST_REGISTRY 127.0.0.1:5000 \
  UCR_TEST_AUTH_REGISTRY 127.0.0.1:5001 \
  UCR_TEST_AUTH_USER ucr \
  UCR_TEST_AUTH_PASSWORD ucr-secret \
  UCR_TEST_SCHEMA1_REGISTRY 127.0.0.1:5002 \
  UCR_TEST_TOKEN_REGISTRY 127.0.0.1:5003 \
  UCR_TEST_ARCHIVES "$UCR_TEST_DIR/archives" \
  UCR_TEST_OCI_LAYOUT "$UCR_TEST_DIR/images/oci"

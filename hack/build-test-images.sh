#!/usr/bin/env bash
# Builds the integration-test images from busybox-static with umoci (and one
# real Debian image with debootstrap), pushes them to the registries of
# hack/registries.sh (which must be running) and writes image archives. Needs
# root (umoci unpack keeps uid/gid; device nodes, setuid bits, debootstrap).
# Skips all of it when the stamp files exist and the registries still hold the
# images.
#
# usage: hack/build-test-images.sh [--big]
#
# All images: linux/amd64, Env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
# Cmd ["sh"] (debian: Cmd ["bash"]), no Entrypoint, no WorkingDir, no User.
#
# busybox (1 layer):
#   /bin/busybox (static) and /bin/<applet> -> busybox (relative symlink) for
#     every applet of `busybox --list` (sh ls cat echo sleep id env true false
#     wget nc hostname ps mount ...)
#   /etc/passwd  root:x:0:0:root:/root:/bin/sh
#                nobody:x:65534:65534:nobody:/nonexistent:/bin/false
#                ucruser:x:1000:1000::/home/ucruser:/bin/sh
#   /etc/group   root:x:0:  nogroup:x:65534:  ucrgroup:x:1000:ucruser  wheel:x:10:ucruser
#   /tmp 1777, /root 0700, /home/ucruser 0755 owned 1000:1000
#   (no /dev, /proc, /sys: the runtime must create its mount points)
#
# layered = busybox + 3 layers:
#   L2 (umoci): /data/keep "keep\n", /data/gone "gone\n", /data/dir/file1
#       "file1\n", /data/swap (file) "swap\n", /opaque/old1 "old1\n",
#       /opaque/old2 "old2\n"
#   L3 (hand-made tar; umoci only makes per-file whiteouts, never opaque
#       ones, and stores a new hardlink's lower-layer target as the link),
#       exact entries, in this order:
#         data/  data/.wh.gone  data/keep  data/hard (hardlink -> data/keep)
#         data/swap/  data/swap/inside  opaque/  opaque/.wh..wh..opq  opaque/new
#   L4 (umoci): /data/link -> keep (symlink), /data/blob (1 MiB random)
# Merged filesystem of layered, besides everything in busybox:
#   /data/keep        regular file "keep\n", 2 links (same inode as /data/hard)
#   /data/hard        regular file "keep\n", same inode as /data/keep
#   /data/dir/file1   "file1\n"
#   /data/swap/       directory (was a file in L2) holding only inside "inside\n"
#   /data/link        symlink -> keep
#   /data/blob        1048576 random bytes
#   /opaque/          directory holding only new "new\n" (old1, old2 hidden)
#   absent: /data/gone, /opaque/old1, /opaque/old2
#
# big (only with --big; for benchmarks): busybox + 4 layers, each one file
#   /big/layerN.bin (N=1..4) of 30 MiB from /dev/urandom.
#
# debian-layout (1 layer; busybox shaped like Debian/Ubuntu, merged /usr):
#   /bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib (relative symlinks)
#   /usr/bin/busybox (static, 0755) and /usr/bin/<applet> -> busybox (relative
#     symlink) for every applet of `busybox --list`, so /bin/sh is reached
#     through the /bin symlink; /usr/sbin, /usr/lib empty directories 0755
#   /usr/bin/suid-busybox  a copy of busybox (own inode, not a link), mode
#     4755 (setuid), owned 0:0
#   /run 0755 directory, /run/lock 1777 directory, /var 0755 directory
#   /var/run -> /run, /var/lock -> /run/lock (ABSOLUTE symlinks, as in Debian)
#   /etc/passwd, /etc/group, /tmp 1777, /root 0700, /home/ucruser 0755 1000:1000
#     exactly as in busybox (no /dev, /proc, /sys)
#
# devnodes = busybox + 1 layer (umoci), device nodes at the top of the rootfs
#   (not under /dev, which the runtime covers with a tmpfs), both owned 0:0:
#   /loop0  block device 7:0, mode 0666
#   /mem    character device 1:1, mode 0666
#
# hostile-links = busybox + 1 layer (umoci), symlinks that lead out of the
#   rootfs if followed on the host:
#   /vol -> /etc              (absolute symlink)
#   /up  -> ../../../../tmp   (relative symlink that climbs above the root)
#
# debian (ucr-test/debian:bookworm; its own stamp: built once per machine, not
#   again when only the busybox images change): a real Debian 12, one layer
#   made by `debootstrap --variant=minbase bookworm DIR $DEBIAN_MIRROR` and
#   packed with `tar --numeric-owner --xattrs -C DIR -c .`: pax format, entries
#   named "./", "./etc/", "./usr/bin/bash" ... in directory (not sorted) order,
#   ~128 MB uncompressed, ~50 MB gzipped. Removed before packing:
#   /var/cache/apt/archives/*.deb, /var/lib/apt/lists/* (both directories
#   stay; archives/ keeps its empty partial/), and /etc/resolv.conf and
#   /etc/hostname (debootstrap copies the build host's). What tests can rely on:
#   /bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib, /lib64 -> usr/lib64
#     (relative symlinks, merged /usr); /usr/bin/bash; /usr/bin/sh -> dash
#   /var/run -> /run, /var/lock -> /run/lock (absolute symlinks); /run 0755,
#     /run/lock 1777, /tmp 1777, /var/tmp 1777, /root 0700; /proc, /sys, /home
#     empty directories
#   setuid root, mode 4755, 0:0: /usr/bin/su /usr/bin/passwd /usr/bin/mount
#     /usr/bin/umount /usr/bin/chsh /usr/bin/chfn /usr/bin/gpasswd
#     /usr/bin/newgrp; setgid shadow, mode 2755, 0:42: /usr/bin/chage
#     /usr/bin/expiry /usr/sbin/unix_chkpwd
#   /dev (debootstrap's mknod): character devices, mode 0666, 0:0, null 1:3
#     zero 1:5 full 1:7 random 1:8 urandom 1:9 tty 5:0 console 5:1 ptmx 5:2;
#     directories pts/ shm/; absolute symlinks fd -> /proc/self/fd,
#     stdin -> /proc/self/fd/0, stdout -> /proc/self/fd/1,
#     stderr -> /proc/self/fd/2
#   hardlinks (a tar "link to" entry): /usr/bin/perl and /usr/bin/perl5.36.0,
#     /usr/bin/gunzip and /usr/bin/uncompress (which of each pair is the link
#     depends on directory order)
#   /etc/passwd: root:x:0:0:root:/root:/bin/bash ...
#     nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin (no uid 1000)
#   /etc/debian_version "12.<point release>"; /etc/apt/sources.list
#     "deb $DEBIAN_MIRROR bookworm main"; no /etc/hosts, /etc/resolv.conf,
#     /etc/hostname; no xattrs in the layer (minbase sets none)
#
# Pushed (registry 127.0.0.1:5000 unless said otherwise):
#   ucr-test/busybox:latest v2s2   ucr-test/busybox-oci:latest OCI
#   library/busybox:latest v2s2 (serves `busybox` via a docker.io mirror)
#   127.0.0.1:5001/ucr-test/busybox:latest v2s2 (auth ucr:ucr-secret)
#   127.0.0.1:5003/ucr-test/busybox:latest v2s2 (bearer tokens from
#                                  127.0.0.1:5004 for ucr:ucr-secret)
#   127.0.0.1:5002/ucr-test/busybox:schema1 signed schema1
#   ucr-test/layered:latest v2s2   ucr-test/layered-oci:latest OCI
#   ucr-test/multiarch:latest      docker manifest list: linux/amd64 -> busybox
#                                  v2s2, linux/arm64 -> layered v2s2
#   ucr-test/multiarch-oci:latest  OCI index: linux/amd64 -> busybox-oci,
#                                  linux/arm64 -> layered-oci
#   ucr-test/armonly:latest        docker manifest list: linux/arm64 -> busybox,
#                                  linux/ppc64le -> layered (no amd64 match)
#   ucr-test/debian-layout:latest v2s2   ucr-test/devnodes:latest v2s2
#   ucr-test/hostile-links:latest v2s2   ucr-test/debian:bookworm v2s2
#   ucr-test/big:latest v2s2 (with --big)
# (The arm64/ppc64le entries point at amd64 images: only the list matters.)
# Archives in $UCR_TEST_DIR/archives: busybox:latest.tar and layered:latest.tar
# (docker-archive, `docker save` style, uncompressed layers; skopeo writes
# RepoTags docker.io/library/busybox:latest / docker.io/library/layered:latest)
# and busybox-oci:latest.tar (oci-archive, ref.name annotation "latest").
# (GNU tar needs --force-local for these names: it reads "a:b" as host:file.)
# OCI manifests pushed by skopeo have no "mediaType" field; the registry's
# Content-Type says what they are.
set -euo pipefail

UCR_TEST_DIR=${UCR_TEST_DIR:-/var/lib/ucr-test}
images="$UCR_TEST_DIR/images" archives="$UCR_TEST_DIR/archives"
oci="$images/oci" work="$images/work"
stamp="$images/.stamp-v3" big_stamp="$images/.stamp-big-v1"
# The debian image has its own layout, work directory and stamp, out of reach
# of build_main (which wipes $oci, $work and the other stamps): debootstrap
# takes minutes, so it runs once per machine, not on every busybox change.
debian_oci="$images/debian-oci" debian_work="$images/debian-work"
debian_stamp="$images/.stamp-debian-v1"
# The Debian mirror of the machines' own /etc/apt/sources.list.d/debian.sources.
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
R=127.0.0.1:5000 RA=127.0.0.1:5001 RS=127.0.0.1:5002 RT=127.0.0.1:5003 CREDS=ucr:ucr-secret
TOKEN_SERVER=127.0.0.1:5004 TOKEN_SERVICE=ucr-test-registry
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
DOCKER_V2=application/vnd.docker.distribution.manifest.v2+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
SCHEMA1=application/vnd.docker.distribution.manifest.v1+prettyjws
ACCEPT="$DOCKER_V2,$DOCKER_LIST,$OCI_MANIFEST,$OCI_INDEX,$SCHEMA1"

die() { echo "build-test-images: ERROR: $*" >&2; exit 1; }
log() { echo "build-test-images: $*" >&2; }

big=false
case "${1:-}" in
  "") ;; --big) big=true ;;
  *) echo "usage: $0 [--big]" >&2; exit 2 ;;
esac
umask 022   # file modes in the layers must not depend on the caller
((EUID == 0)) || die "must run as root (umoci unpack/repack keeps file owners)"
mkdir -p "$images" "$archives"
exec 9>"$images/.lock"; flock 9   # concurrent CI jobs must not build twice

# digest HOST/REPO:TAG -> the manifest digest the registry serves (fails if
# none), with credentials for the basic-auth registry and a pull token for the
# bearer one.
digest() {
  local host=${1%%/*} rest=${1#*/} auth=() token
  case $host in
    "$RA") auth=(-u "$CREDS") ;;
    "$RT")
      token=$(curl -fsS -u "$CREDS" -G --data-urlencode "service=$TOKEN_SERVICE" \
        --data-urlencode "scope=repository:${rest%:*}:pull" "http://$TOKEN_SERVER/token" | jq -er .token) ||
        return 1
      auth=(-H "Authorization: Bearer $token") ;;
  esac
  curl -fsS "${auth[@]}" -I -H "Accept: $ACCEPT" "http://$host/v2/${rest%:*}/manifests/${rest##*:}" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2; f = 1 } END { exit !f }'
}

# push LAYOUT_TAG FORMAT HOST/REPO:TAG [LAYOUT] (skopeo fetches the bearer
# registry's push token itself, with the same credentials; LAYOUT defaults to
# $oci)
push() {
  local creds=(); [[ ${3%%/*} == "$RA" || ${3%%/*} == "$RT" ]] && creds=(--dest-creds "$CREDS")
  log "push $1 -> $3 ($2)"
  # --insecure-policy: don't depend on /etc/containers/policy.json.
  skopeo --insecure-policy copy -q --dest-tls-verify=false "${creds[@]}" \
    --format "$2" "oci:${4:-$oci}:$1" "docker://$3"
}

# layer TAG FUNCTION: adds a layer to TAG made of what FUNCTION (run inside
# the unpacked rootfs) changes.
layer() {
  rm -rf "$work/bundle"
  umoci unpack --image "$oci:$1" "$work/bundle" >/dev/null
  (cd "$work/bundle/rootfs" && "$2")
  umoci repack --image "$oci:$1" --history.created_by "$2" "$work/bundle"
  rm -rf "$work/bundle"
}

# busybox_in DIR: /DIR/busybox and a relative symlink DIR/<applet> -> busybox
# for every applet.
busybox_in() {
  mkdir -p "$1"
  install -m 0755 /bin/busybox "$1/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [[ $a == busybox ]] || ln -sfn busybox "$1/$a"
  done
}

# Users, groups and home directories shared by busybox and debian-layout.
users_and_homes() {
  mkdir -p etc root tmp home/ucruser
  printf '%s\n' root:x:0:0:root:/root:/bin/sh \
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false \
    ucruser:x:1000:1000::/home/ucruser:/bin/sh >etc/passwd
  printf '%s\n' root:x:0: nogroup:x:65534: ucrgroup:x:1000:ucruser wheel:x:10:ucruser >etc/group
  chmod 1777 tmp; chmod 0700 root; chmod 0755 home/ucruser
  chown 1000:1000 home/ucruser
}

busybox_rootfs() {
  busybox_in bin
  users_and_homes
}

# Debian's merged /usr and /run layout, which a runtime resolving paths in the
# rootfs must follow: /bin/sh only exists through the /bin -> usr/bin symlink,
# and /var/run, /var/lock are absolute symlinks that must resolve inside the
# rootfs, not on the host.
debian_layout_rootfs() {
  busybox_in usr/bin
  mkdir -p usr/sbin usr/lib run/lock var
  ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib
  # A copy, not a link: tests need a setuid file of its own (nosuid, no_new_privs).
  install -m 4755 -o 0 -g 0 /bin/busybox usr/bin/suid-busybox
  chmod 0755 run; chmod 1777 run/lock
  ln -s /run var/run; ln -s /run/lock var/lock
  users_and_homes
}

# Device nodes outside /dev: the runtime mounts a tmpfs on /dev, so only nodes
# elsewhere show what it does with the ones a layer carries.
devnodes_l2() {
  mknod -m 0666 loop0 b 7 0
  mknod -m 0666 mem c 1 1
}

# Symlinks that point out of the rootfs when followed on the host: extracting
# or mounting onto /vol/... or /up/... must stay inside the rootfs.
hostile_links_l2() {
  ln -s /etc vol
  ln -s ../../../../tmp up
}

layered_l2() {
  mkdir -p data/dir opaque
  echo keep >data/keep; echo gone >data/gone; echo file1 >data/dir/file1
  echo swap >data/swap; echo old1 >opaque/old1; echo old2 >opaque/old2
}

layered_l4() {
  ln -s keep data/link
  head -c 1048576 /dev/urandom >data/blob
}

# L3 by hand (see the top of the file for why). Entries are listed explicitly
# so that data/keep comes before data/hard and tar stores hard -> keep.
layered_l3() {
  local s="$work/l3"
  rm -rf "$s"; mkdir -p "$s/data/swap" "$s/opaque"
  echo keep >"$s/data/keep"; ln "$s/data/keep" "$s/data/hard"
  echo inside >"$s/data/swap/inside"; echo new >"$s/opaque/new"
  : >"$s/data/.wh.gone"; : >"$s/opaque/.wh..wh..opq"
  tar -C "$s" -cf "$work/l3.tar" --no-recursion --format=ustar --numeric-owner \
    --owner=0 --group=0 --mtime=@1704067200 \
    data/ data/.wh.gone data/keep data/hard data/swap/ data/swap/inside \
    opaque/ opaque/.wh..wh..opq opaque/new
  umoci raw add-layer --image "$oci:layered" --history.created_by "layered_l3 (hand-made tar)" "$work/l3.tar"
}

# copy_manifest SRC_REPO DIGEST DST_REPO (on $R): the registry only accepts a
# manifest list whose entries exist in the list's own repository, so
# cross-mount the blobs and PUT the exact manifest bytes by digest. Leaves the
# manifest in $work/manifest.json and its media type in $manifest_type.
copy_manifest() {
  local f="$work/manifest.json" ct b code
  ct=$(curl -fsS -H "Accept: $ACCEPT" -o "$f" -w '%{content_type}' "http://$R/v2/$1/manifests/$2")
  [[ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" == "$2" ]] || die "digest mismatch for $1@$2"
  for b in $(jq -r '.config.digest, .layers[].digest' "$f"); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://$R/v2/$3/blobs/uploads/?mount=$b&from=$1")
    [[ $code == 201 ]] || die "mounting $b from $1 into $3: HTTP $code"
  done
  curl -fsS -X PUT -H "Content-Type: $ct" --data-binary "@$f" "http://$R/v2/$3/manifests/$2" >/dev/null
  manifest_type=$ct
}

# put_list REPO LIST_MEDIA_TYPE ARCH=SRC_REPO... : tags REPO:latest on $R as
# a manifest list / index whose entry for ARCH is SRC_REPO:latest.
put_list() {
  local repo=$1 mt=$2 spec src dg entries=()
  shift 2
  for spec in "$@"; do
    src=${spec#*=}; dg=$(digest "$R/$src:latest")
    copy_manifest "$src" "$dg" "$repo"
    entries+=("$(jq -nc --arg t "$manifest_type" --arg d "$dg" --arg a "${spec%%=*}" \
      --argjson s "$(stat -c %s "$work/manifest.json")" \
      '{mediaType: $t, size: $s, digest: $d, platform: {architecture: $a, os: "linux"}}')")
  done
  printf '%s\n' "${entries[@]}" | jq -s --arg mt "$mt" '{schemaVersion: 2, mediaType: $mt, manifests: .}' >"$work/list.json"
  log "put $mt $R/$repo:latest"
  curl -fsS -X PUT -H "Content-Type: $mt" --data-binary "@$work/list.json" "http://$R/v2/$repo/manifests/latest" >/dev/null
}

# archive LAYOUT_TAG TRANSPORT FILE [REF]: skopeo splits "transport:path:ref"
# at the first colon, so write to a colon-free name and rename.
archive() {
  local tmp="$archives/.tmp.tar"
  rm -f "$tmp"   # docker-archive refuses to add to an existing file
  log "archive $1 -> $archives/$3"
  skopeo --insecure-policy copy -q "oci:$oci:$1" "$2:$tmp${4:+:$4}"
  mv -f "$tmp" "$archives/$3"
}

build_main() {
  rm -rf "$oci" "$work"; mkdir -p "$work"
  local s
  for s in "$images"/.stamp-*; do   # older stamps too, but not the debian one
    [[ $s == "$images"/.stamp-debian-* ]] || rm -f "$s"
  done
  ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamically linked; install busybox-static"
  umoci init --layout "$oci"
  umoci new --image "$oci:busybox"
  layer busybox busybox_rootfs
  umoci config --image "$oci:busybox" --no-history --os linux --architecture amd64 \
    --config.env "$PATH_ENV" --config.cmd sh

  umoci tag --image "$oci:busybox" layered
  layer layered layered_l2
  layered_l3
  layer layered layered_l4

  umoci new --image "$oci:debian-layout"
  layer debian-layout debian_layout_rootfs
  umoci config --image "$oci:debian-layout" --no-history --os linux --architecture amd64 \
    --config.env "$PATH_ENV" --config.cmd sh

  umoci tag --image "$oci:busybox" devnodes
  layer devnodes devnodes_l2
  umoci tag --image "$oci:busybox" hostile-links
  layer hostile-links hostile_links_l2

  push busybox v2s2 "$R/ucr-test/busybox:latest"
  push busybox oci "$R/ucr-test/busybox-oci:latest"
  push busybox v2s2 "$R/library/busybox:latest"
  push busybox v2s2 "$RA/ucr-test/busybox:latest"
  push busybox v2s2 "$RT/ucr-test/busybox:latest"
  push busybox v2s1 "$RS/ucr-test/busybox:schema1"
  push layered v2s2 "$R/ucr-test/layered:latest"
  push layered oci "$R/ucr-test/layered-oci:latest"
  push debian-layout v2s2 "$R/ucr-test/debian-layout:latest"
  push devnodes v2s2 "$R/ucr-test/devnodes:latest"
  push hostile-links v2s2 "$R/ucr-test/hostile-links:latest"

  # The schema1 registry must hand back the signed manifest as such.
  local ct
  ct=$(curl -fsS -o /dev/null -w '%{content_type}' -H "Accept: $SCHEMA1" \
    "http://$RS/v2/ucr-test/busybox/manifests/schema1")
  [[ $ct == "$SCHEMA1" ]] || die "schema1 registry returned Content-Type '$ct'"

  put_list ucr-test/multiarch "$DOCKER_LIST" amd64=ucr-test/busybox arm64=ucr-test/layered
  put_list ucr-test/multiarch-oci "$OCI_INDEX" amd64=ucr-test/busybox-oci arm64=ucr-test/layered-oci
  put_list ucr-test/armonly "$DOCKER_LIST" arm64=ucr-test/busybox ppc64le=ucr-test/layered

  archive busybox docker-archive busybox:latest.tar busybox:latest
  archive busybox oci-archive busybox-oci:latest.tar latest
  archive layered docker-archive layered:latest.tar layered:latest
  rm -rf "$work"
  touch "$stamp"
}

build_big() {
  rm -rf "$work"; mkdir -p "$work/big/big"
  umoci tag --image "$oci:busybox" big
  local i
  for i in 1 2 3 4; do
    rm -f "$work/big/big/"*
    head -c $((30 << 20)) /dev/urandom >"$work/big/big/layer$i.bin"
    tar -C "$work/big" -cf "$work/big.tar" --numeric-owner --owner=0 --group=0 big
    umoci raw add-layer --image "$oci:big" --history.created_by "30 MiB random #$i" "$work/big.tar"
  done
  push big v2s2 "$R/ucr-test/big:latest"
  rm -rf "$work"
  touch "$big_stamp"
}

# debootstrap writes its target's proc/sys mounts away on exit, but a killed
# run can leave them: unmount them before rm -rf walks into them.
clear_debian_work() {
  awk -v d="$debian_work/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts |
    sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$debian_work"
}

build_debian() {
  local t0=$SECONDS root="$debian_work/rootfs" log_file="$images/debootstrap.log"
  clear_debian_work; rm -rf "$debian_oci" "$debian_stamp"; mkdir -p "$debian_work"
  command -v debootstrap >/dev/null || die "debootstrap missing; run hack/install-deps.sh --test"
  log "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (a minute or more; log in $log_file)"
  if ! debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >"$log_file" 2>&1; then
    tail -n 20 "$log_file" >&2
    [[ -e $root/debootstrap/debootstrap.log ]] && tail -n 20 "$root/debootstrap/debootstrap.log" >&2
    die "debootstrap of bookworm from $DEBIAN_MIRROR failed (network? mirror?); see $log_file"
  fi
  # What apt downloaded is not part of the system; resolv.conf and hostname
  # are the build host's, copied in by debootstrap (the runtime provides both).
  rm -f "$root"/var/cache/apt/archives/*.deb "$root/etc/resolv.conf" "$root/etc/hostname"
  rm -rf "$root"/var/lib/apt/lists/*
  tar --numeric-owner --xattrs -C "$root" -cf "$debian_work/layer.tar" .
  umoci init --layout "$debian_oci"
  umoci new --image "$debian_oci:bookworm"
  umoci raw add-layer --image "$debian_oci:bookworm" \
    --history.created_by "debootstrap --variant=minbase bookworm $DEBIAN_MIRROR" "$debian_work/layer.tar"
  umoci config --image "$debian_oci:bookworm" --no-history --os linux --architecture amd64 \
    --config.env "$PATH_ENV" --config.cmd bash
  clear_debian_work
  log "debian image built in $((SECONDS - t0)) s"
}

refs=("$R/ucr-test/busybox:latest" "$R/ucr-test/busybox-oci:latest" "$R/library/busybox:latest"
      "$RA/ucr-test/busybox:latest" "$RT/ucr-test/busybox:latest" "$RS/ucr-test/busybox:schema1"
      "$R/ucr-test/layered:latest" "$R/ucr-test/layered-oci:latest"
      "$R/ucr-test/multiarch:latest" "$R/ucr-test/multiarch-oci:latest" "$R/ucr-test/armonly:latest"
      "$R/ucr-test/debian-layout:latest" "$R/ucr-test/devnodes:latest" "$R/ucr-test/hostile-links:latest"
      "$R/ucr-test/debian:bookworm")
archive_files=(busybox:latest.tar busybox-oci:latest.tar layered:latest.tar)

# Up to date = stamp + layout + archives present and every registry still
# serves its last-pushed image (the registries' storage may have been wiped).
up_to_date() {
  [[ -e $stamp && -d $oci ]] || return 1
  local f; for f in "${archive_files[@]}"; do [[ -s "$archives/$f" ]] || return 1; done
  digest "$R/ucr-test/armonly:latest" && digest "$R/ucr-test/hostile-links:latest" &&
    digest "$RA/ucr-test/busybox:latest" && digest "$RT/ucr-test/busybox:latest" &&
    digest "$RS/ucr-test/busybox:schema1"
} >/dev/null 2>&1

for r in $R $RA $RS $RT; do
  curl -s -o /dev/null --max-time 2 "http://$r/v2/" || die "no registry on $r; run hack/registries.sh start"
done
curl -s -o /dev/null --max-time 2 "http://$TOKEN_SERVER/token" ||
  die "no token server on $TOKEN_SERVER; run hack/registries.sh start"
if up_to_date; then log "images up to date ($stamp)"; else build_main; fi
# The stamp is written only after a complete build and push, so with it the
# layout is whole: when just the registry lost the image, push it again.
if [[ -e $debian_stamp ]] && digest "$R/ucr-test/debian:bookworm" >/dev/null 2>&1; then
  log "debian image up to date ($debian_stamp)"
else
  [[ -e $debian_stamp && -d $debian_oci ]] || build_debian
  push bookworm v2s2 "$R/ucr-test/debian:bookworm" "$debian_oci"
  touch "$debian_stamp"
fi
if $big; then
  if [[ -e $big_stamp ]] && digest "$R/ucr-test/big:latest" >/dev/null 2>&1; then
    log "big image up to date"
  else
    build_big
  fi
fi

$big && refs+=("$R/ucr-test/big:latest")
for r in "${refs[@]}"; do printf '%-40s %s\n' "$r" "$(digest "$r")"; done
for f in "${archive_files[@]}"; do printf '%-40s %s\n' "$archives/$f" "$(stat -c %s "$archives/$f") bytes"; done

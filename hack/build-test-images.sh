#!/usr/bin/env bash
# Builds the integration-test images from busybox-static with umoci, pushes
# them to the registries of hack/registries.sh (which must be running) and
# writes image archives. Needs root (umoci unpack keeps uid/gid). Skips all of
# it when the stamp file exists and the registries still hold the images.
#
# usage: hack/build-test-images.sh [--big]
#
# All images: linux/amd64, Env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
# Cmd ["sh"], no Entrypoint, no WorkingDir, no User.
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
stamp="$images/.stamp-v2" big_stamp="$images/.stamp-big-v1"
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

# push LAYOUT_TAG FORMAT HOST/REPO:TAG (skopeo fetches the bearer registry's
# push token itself, with the same credentials)
push() {
  local creds=(); [[ ${3%%/*} == "$RA" || ${3%%/*} == "$RT" ]] && creds=(--dest-creds "$CREDS")
  log "push $1 -> $3 ($2)"
  # --insecure-policy: don't depend on /etc/containers/policy.json.
  skopeo --insecure-policy copy -q --dest-tls-verify=false "${creds[@]}" \
    --format "$2" "oci:$oci:$1" "docker://$3"
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

busybox_rootfs() {
  mkdir -p bin etc root tmp home/ucruser
  install -m 0755 /bin/busybox bin/busybox
  local a
  for a in $(/bin/busybox --list); do
    [[ $a == busybox ]] || ln -sfn busybox "bin/$a"
  done
  printf '%s\n' root:x:0:0:root:/root:/bin/sh \
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false \
    ucruser:x:1000:1000::/home/ucruser:/bin/sh >etc/passwd
  printf '%s\n' root:x:0: nogroup:x:65534: ucrgroup:x:1000:ucruser wheel:x:10:ucruser >etc/group
  chmod 1777 tmp; chmod 0700 root; chmod 0755 home/ucruser
  chown 1000:1000 home/ucruser
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
  rm -rf "$oci" "$work" "$images"/.stamp-*; mkdir -p "$work"   # older stamps too
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

  push busybox v2s2 "$R/ucr-test/busybox:latest"
  push busybox oci "$R/ucr-test/busybox-oci:latest"
  push busybox v2s2 "$R/library/busybox:latest"
  push busybox v2s2 "$RA/ucr-test/busybox:latest"
  push busybox v2s2 "$RT/ucr-test/busybox:latest"
  push busybox v2s1 "$RS/ucr-test/busybox:schema1"
  push layered v2s2 "$R/ucr-test/layered:latest"
  push layered oci "$R/ucr-test/layered-oci:latest"

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

refs=("$R/ucr-test/busybox:latest" "$R/ucr-test/busybox-oci:latest" "$R/library/busybox:latest"
      "$RA/ucr-test/busybox:latest" "$RT/ucr-test/busybox:latest" "$RS/ucr-test/busybox:schema1"
      "$R/ucr-test/layered:latest" "$R/ucr-test/layered-oci:latest"
      "$R/ucr-test/multiarch:latest" "$R/ucr-test/multiarch-oci:latest" "$R/ucr-test/armonly:latest")
archive_files=(busybox:latest.tar busybox-oci:latest.tar layered:latest.tar)

# Up to date = stamp + layout + archives present and every registry still
# serves its last-pushed image (the registries' storage may have been wiped).
up_to_date() {
  [[ -e $stamp && -d $oci ]] || return 1
  local f; for f in "${archive_files[@]}"; do [[ -s "$archives/$f" ]] || return 1; done
  digest "$R/ucr-test/armonly:latest" && digest "$RA/ucr-test/busybox:latest" &&
    digest "$RT/ucr-test/busybox:latest" && digest "$RS/ucr-test/busybox:schema1"
} >/dev/null 2>&1

for r in $R $RA $RS $RT; do
  curl -s -o /dev/null --max-time 2 "http://$r/v2/" || die "no registry on $r; run hack/registries.sh start"
done
curl -s -o /dev/null --max-time 2 "http://$TOKEN_SERVER/token" ||
  die "no token server on $TOKEN_SERVER; run hack/registries.sh start"
if up_to_date; then log "images up to date ($stamp)"; else build_main; fi
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

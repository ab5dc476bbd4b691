#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing cetcd needs (clang and its
# runtime for the fuzz targets; etcd-server for the side-by-side tests), only those not
# installed yet. Called by `make run` and `make test`; safe to run again.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config clang libclang-rt-dev
  libuv1-dev libnghttp2-dev libssl-dev nettle-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev libyaml-dev libcrypt-dev libcmocka-dev
  etcd-client etcd-server golang-go golang-etcd-server-dev golang-github-stretchr-testify-dev
  python3 python3-etcd3 curl iproute2 util-linux
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

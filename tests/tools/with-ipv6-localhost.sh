#!/usr/bin/env bash
# Runs a command with `localhost` resolving to ::1 first, then 127.0.0.1, as on a stock
# Debian 12 machine, whatever this machine's /etc/hosts says: a private mount namespace
# (unshare -m, needs root) gets its own /etc/hosts bind-mounted over the real one.
# Fails, naming the cause, when that namespace cannot be made.
set -euo pipefail
if (($# == 0)); then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
hosts=$(mktemp /tmp/cetcd-hosts-XXXXXX)
trap 'rm -f "$hosts"' EXIT
printf '::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tlocalhost\n' >"$hosts"
if ! unshare -m true 2>/dev/null; then
  echo "with-ipv6-localhost: cannot create a mount namespace (unshare -m needs root); run the tests as root, as CI does" >&2
  exit 1
fi
unshare -m bash -c '
  mount --bind "$0" /etc/hosts || { echo "with-ipv6-localhost: cannot bind-mount $0 over /etc/hosts" >&2; exit 1; }
  first=$(getent ahosts localhost | awk "NR==1{print \$1}")
  [ "$first" = "::1" ] || { echo "with-ipv6-localhost: localhost resolves to $first first, not ::1" >&2; exit 1; }
  exec "$@"' "$hosts" "$@"

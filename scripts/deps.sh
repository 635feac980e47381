#!/usr/bin/env bash
# The one installer: every build, test and bench dependency of cairn, from
# Debian's packages. Idempotent: installs only what is missing, and runs
# apt-get update only when something is.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang clang-format libclang-rt-14-dev
  libuv1-dev libhttp-parser-dev libjansson-dev
  python3 python3-pytest python3-etcd python3-urllib3
  etcd-server etcd-client
  valgrind iproute2 procps curl perl util-linux mount
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"

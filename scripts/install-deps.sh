#!/bin/sh
# install-deps.sh - install what hemoscan needs to build and test, from
# Debian 12 packages only. Safe to run again: apt-get install leaves
# installed packages alone. Uses sudo only when not already root.
set -eu

# clang and libclang-rt-14-dev are for the fuzzers (configure
# --enable-fuzzers, a CI step); the normal build does not need them.
# libclang-rt-14-dev holds libFuzzer; clang only recommends it (through
# libclang-common-14-dev), so --no-install-recommends needs it named.
PACKAGES="build-essential g++ autoconf automake libtool pkg-config
libdcmtk-dev dcmtk libtiff-dev libtiff-tools libdeflate-dev libsqlite3-dev sqlite3
libcunit1-dev libpng-dev zlib1g-dev libopenblas-dev libopenjp2-7-dev libcharls-dev libssl-dev libjansson-dev
valgrind jq time clang libclang-rt-14-dev"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
else
    echo "install-deps.sh: not root and sudo is not installed; run this as root" >&2
    exit 1
fi

# env, not export: sudo resets the environment.
apt_get() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

apt_get update
# shellcheck disable=SC2086 # PACKAGES is a word list on purpose
apt_get install -y --no-install-recommends $PACKAGES

echo "install-deps.sh: all hemoscan build dependencies are installed"

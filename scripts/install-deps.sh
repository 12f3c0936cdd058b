#!/usr/bin/env bash
# Installs the Debian packages kgstore builds and tests with. Needs root
# (or sudo); does nothing when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libjansson-dev libsqlite3-dev sqlite3
      libpq-dev zlib1g-dev postgresql-15 wordnet-base valgrind
      python3 python3-dev python3-pytest lcov)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Installs every build and test dependency of ctxlab from Debian 12 packages.
# Idempotent; run as root (or with sudo available). No other network access is needed.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost-dev libboost-program-options-dev
  libeigen3-dev libsqlite3-dev sqlite3 libgtest-dev libgmock-dev
  libsentencepiece-dev nlohmann-json3-dev zlib1g-dev
  libicu-dev wordnet-base gnuplot-nox
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install_deps: all packages present"
fi

#!/usr/bin/env bash
# Makes sure the real components the tests start are installed:
#   docker-registry (CNCF Distribution 2.8), skopeo, htpasswd (apache2-utils), openssl, chromium,
#   python3-torch and python3-numpy (to write genuine checkpoints), strace (to see what reaches the disk).
# As root on Debian it installs what is missing with apt-get; elsewhere it says what to install.
set -euo pipefail

declare -A package_of=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [htpasswd]=apache2-utils
  [openssl]=openssl
  [chromium]=chromium
  [strace]=strace
)

missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
# Genuine PyTorch and NumPy checkpoints are written by Debian's python3-torch and python3-numpy.
/usr/bin/python3 -c "import torch, numpy" >/dev/null 2>&1 || missing+=(python3-torch python3-numpy)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} (Debian packages)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

cat >&2 <<MSG
setup: the tests need these Debian packages, which are not installed: ${missing[*]}
Install them with:
  sudo apt-get install -y ${missing[*]}
(On another system: CNCF Distribution 2.8 as 'docker-registry', skopeo, htpasswd, openssl on PATH and Chromium at /usr/bin/chromium.)
MSG
exit 1

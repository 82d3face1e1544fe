#!/usr/bin/env bash
# Makes sure the real components the tests start are installed:
#   docker-registry (CNCF Distribution 2.8), skopeo, htpasswd (apache2-utils), openssl, chromium,
#   python3-torch and python3-numpy (to write genuine checkpoints), strace (to see what reaches the disk),
#   zstd (to compress tar+zstd layers), firefox-esr (the Firefox tests, driven over WebDriver BiDi) and
#   mesa-vulkan-drivers (lavapipe, the software Vulkan that gives Firefox a WebGPU adapter).
# As root on Debian it installs what is missing with apt-get; elsewhere it says what to install.
set -euo pipefail

# The GGUF fixtures' writer, scripts/gguf-fixtures.py, runs in a venv with llama.cpp's `gguf` package
# and numpy (pip, from the configured index). The tests read the committed fixtures and need neither,
# so a venv that cannot be made is reported, not fatal.
FIXTURES_VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv-fixtures"
fixtures_venv() {
  "$FIXTURES_VENV/bin/python" -c "import gguf, numpy" >/dev/null 2>&1 && return 0
  if { [ -x "$FIXTURES_VENV/bin/pip" ] || python3 -m venv "$FIXTURES_VENV" >/dev/null 2>&1; } &&
    "$FIXTURES_VENV/bin/pip" install -q --disable-pip-version-check gguf numpy >/dev/null 2>&1; then
    echo "setup: made $FIXTURES_VENV with gguf and numpy (for scripts/gguf-fixtures.py)" >&2
  else
    echo "setup: could not make $FIXTURES_VENV with gguf and numpy (python3 -m venv, pip install); only scripts/gguf-fixtures.py needs it" >&2
  fi
}

# The tiny BERT fixture's writer, scripts/tiny-bert.py, needs Debian's torch (so a venv with system site
# packages) and tokenizers, onnx and numpy<2 (Debian's torch is built against numpy 1) from pip. The tests
# read the committed test/fixtures/tiny-bert and need none of it: a venv that cannot be made is reported.
TORCH_VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv-torch-fixtures"
torch_fixtures_venv() {
  "$TORCH_VENV/bin/python" -c "import torch, tokenizers, onnx" >/dev/null 2>&1 && return 0
  if { [ -x "$TORCH_VENV/bin/pip" ] || /usr/bin/python3 -m venv --system-site-packages "$TORCH_VENV" >/dev/null 2>&1; } &&
    "$TORCH_VENV/bin/pip" install -q --disable-pip-version-check tokenizers onnx "numpy<2" >/dev/null 2>&1; then
    echo "setup: made $TORCH_VENV with tokenizers and onnx (for scripts/tiny-bert.py)" >&2
  else
    echo "setup: could not make $TORCH_VENV with tokenizers, onnx and numpy<2; only scripts/tiny-bert.py needs it" >&2
  fi
}

declare -A package_of=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [htpasswd]=apache2-utils
  [openssl]=openssl
  [chromium]=chromium
  [strace]=strace
  [zstd]=zstd
  [firefox-esr]=firefox-esr
)

missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
# Genuine PyTorch and NumPy checkpoints are written by Debian's python3-torch and python3-numpy.
/usr/bin/python3 -c "import torch, numpy" >/dev/null 2>&1 || missing+=(python3-torch python3-numpy)
# Firefox's WebGPU adapter here is lavapipe, Mesa's software Vulkan driver (no tool on PATH: its ICD file).
compgen -G "/usr/share/vulkan/icd.d/lvp_icd.*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
{ [ -f /usr/share/games/fortunes/fortunes ] && [ -d /usr/lib/x86_64-linux-gnu/openblas-pthread ]; } || missing+=(fortunes libopenblas0-pthread) # the demo LM's corpus, and a fast BLAS for scripts/train-lm.py
if [ ${#missing[@]} -eq 0 ]; then
  fixtures_venv
  torch_fixtures_venv
  exit 0
fi

if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} (Debian packages)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fixtures_venv
  torch_fixtures_venv
  exit 0
fi

cat >&2 <<MSG
setup: the tests need these Debian packages, which are not installed: ${missing[*]}
Install them with:
  sudo apt-get install -y ${missing[*]}
(On another system: CNCF Distribution 2.8 as 'docker-registry', skopeo, htpasswd, openssl, zstd on PATH, Chromium at /usr/bin/chromium and Firefox ESR as firefox-esr.)
MSG
exit 1

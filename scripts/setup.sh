#!/usr/bin/env bash
# Set up queueemo on a Debian/Ubuntu machine: system packages, a venv in .venv with a CPU build of torch,
# and queueemo itself with its test and PostgreSQL extras (a normal, non-editable install, so the shipped
# weights are used as users get them). Never stops or reconfigures a running service.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg mpd libsndfile1 sqlite3 postgresql)
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: please install: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip)

torch_installed() {
    .venv/bin/python -c "import importlib.metadata as m, sys; v = m.version('torch'); \
sys.exit(v.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null
}

# A CPU build of torch (a bare `torch` requirement pulls a multi-GB CUDA build). First the PyTorch CPU
# index (any machine with internet; pip's find-links still apply, so a local wheel is found too), with
# short timeouts; if it cannot be reached, whatever pip is configured with (an offline mirror or
# PIP_FIND_LINKS holding the CPU wheel).
if ! torch_installed; then
    if ! "${PIP[@]}" install -q --retries 1 --timeout 15 --index-url "$TORCH_CPU_INDEX" \
            "torch==$TORCH_VERSION" 2>/dev/null; then
        echo "setup: $TORCH_CPU_INDEX unreachable; installing torch from pip's configured sources" >&2
        "${PIP[@]}" install -q "torch==$TORCH_VERSION"
    fi
fi
if .venv/bin/python -c "import sys, torch; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
    echo "setup: warning: the torch installed is a CUDA build (large); queueemo needs only the CPU" >&2
fi
"${PIP[@]}" install -q ".[test,postgres]"
echo "setup: ready (.venv/bin/queueemo; $(du -sh .venv | cut -f1) in .venv)" >&2

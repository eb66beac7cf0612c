#!/usr/bin/env bash
# Set up queueemo on a fresh Debian/Ubuntu machine: system packages, a venv in .venv with a CPU build of
# torch, and queueemo itself (a normal, non-editable install, so the shipped weights are used as users get them).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg mpd libsndfile1 sqlite3)
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
# Debian enables the system-wide mpd service on install; queueemo's tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet mpd 2>/dev/null; then
    systemctl stop mpd || true
fi

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build (a bare `torch` requirement would pull a multi-GB CUDA build). Elsewhere use
#   pip install torch --index-url https://download.pytorch.org/whl/cpu
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q ".[test]"
echo "setup: ready (.venv/bin/queueemo)" >&2

#!/usr/bin/env bash
# Prepare (or reuse) the FastChat inference engine for the integration tests and local runs.
#
# FastChat 0.2.36 does not run with transformers 5 or pydantic 2, so it lives in its own venv,
# separate from the platform's .venv:
#   engine venv: ${AIGC_ENGINE_VENV:-${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/engine-venv}
#   tiny model:  ${AIGC_TINY_MODEL:-${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/models/tiny-llama}
# The tiny model is a random ~213k-parameter Llama with a locally trained tokenizer
# (scripts/build_tiny_model.py): no model is downloaded.
#
# Idempotent: pip runs only when the pinned requirement set (or the base Python) changed since the
# last successful install (hash kept in a marker file inside the venv); the model is built only
# when its config.json is missing. Prints both paths on stdout as `export NAME=PATH` lines, so
# `eval "$(bash scripts/prepare-engine.sh)"` sets them; progress goes to stderr.
#
# pip's progress: one line per package it collects, then what it installed.
# Needs python3 with venv (Debian: python3-venv, installed here when missing and we are root or
# have passwordless sudo) and PyPI. torch: pip takes the CPU build when one is on its find-links /
# index (as on the CI machines); otherwise PyPI's default Linux wheel (CUDA, ~2.5 GB with nvidia-*)
# is installed. Set AIGC_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu to get the small CPU
# build from PyTorch's index instead.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}"
VENV="${AIGC_ENGINE_VENV:-$CACHE/engine-venv}"
MODEL="${AIGC_TINY_MODEL:-$CACHE/models/tiny-llama}"
PYTHON="${PYTHON:-python3}"
MARKER="$VENV/.aigc-engine-requirements.sha256"

# The set that runs controller + model_worker + openai_api_server unpatched (docs: ENVIRONMENT.md).
REQUIREMENTS=(
    "torch==2.13.0"
    "fschat==0.2.36"
    "transformers==4.57.6"
    "tokenizers==0.22.2"
    "huggingface-hub==0.36.2"
    "peft==0.21.2"
    "accelerate==1.15.0"
    "safetensors"
    "sentencepiece"
    "protobuf"
    "pydantic==1.10.27"
    "fastapi==0.125.0"
    "uvicorn"
)

log() { echo "prepare-engine: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# --- base Python with venv support --------------------------------------------------------------
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        log "installing python3-venv"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-venv </dev/null >/dev/null
    fi
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || {
        log "$PYTHON cannot create virtual environments (install python3-venv)"
        exit 1
    }
fi

# --- engine venv ------------------------------------------------------------------------------
req_hash="$(
    {
        printf '%s\n' "${REQUIREMENTS[@]}"
        "$PYTHON" -c 'import sys; print(sys.version)'
        echo "${AIGC_TORCH_INDEX_URL:-}"
    } | sha256sum | cut -d' ' -f1
)"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$req_hash" ] && "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    log "engine venv up to date: $VENV"
else
    start=$(date +%s)
    if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
        log "creating venv $VENV"
        rm -rf "$VENV"
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
    fi
    rm -f "$MARKER"
    pip_args=(install --disable-pip-version-check --no-input --progress-bar off)
    if [ -n "${AIGC_TORCH_INDEX_URL:-}" ]; then
        pip_args+=(--extra-index-url "$AIGC_TORCH_INDEX_URL")
    fi
    log "installing FastChat, torch and transformers (once; 1 to 3 minutes): ${REQUIREMENTS[*]}"
    # one line per package as pip gets to it, so a first run does not look stuck
    "$VENV/bin/python" -m pip "${pip_args[@]}" "${REQUIREMENTS[@]}" 2>&1 \
        | { grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed|ERROR)' || true; } \
        | sed -u 's/^/prepare-engine: /' >&2  # pipefail: a failing pip still fails the script
    "$VENV/bin/python" -c 'import fastchat, torch, transformers' >&2
    echo "$req_hash" >"$MARKER"
    log "engine venv ready in $(($(date +%s) - start)) s"
fi

# --- tiny model --------------------------------------------------------------------------------
if [ -f "$MODEL/config.json" ]; then
    log "tiny model present: $MODEL"
else
    start=$(date +%s)
    log "building tiny model $MODEL"
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" "$ROOT/scripts/build_tiny_model.py" "$MODEL" >&2
    log "tiny model ready in $(($(date +%s) - start)) s"
fi

printf 'export AIGC_ENGINE_VENV=%q\n' "$VENV"
printf 'export AIGC_TINY_MODEL=%q\n' "$MODEL"

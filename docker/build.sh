#!/usr/bin/env bash
# Build the images of docker/ on the Engine at $DOCKER_HOST (or the default one), with cached layers.
#
#   bash docker/build.sh [TARGET...]      targets: base platform engine training test-services
#                                         (default: base platform engine training)
#
# base           imports scripts/prepare-base-image.sh's tarball as $BASE_IMAGE (aigc-base:bookworm) when the
#                image is missing or was imported from another tarball; skipped for any other BASE_IMAGE
# platform       docker/Dockerfile, context: the repository root              -> $PLATFORM_IMAGE
# engine         docker/engine.Dockerfile, context staged in a temporary directory (engine-requirements.txt and
#                the CPU torch wheel; no wheel is ever committed)             -> $ENGINE_IMAGE
# training       docker/training.Dockerfile FROM the engine image, context src/aigc_admin/engine -> $TRAINING_IMAGE
# test-services  local stand-ins for mariadb:11 / redis:7 (docker/test/), for hosts that cannot pull
#                                                                             -> $MARIADB_TEST_IMAGE, $REDIS_TEST_IMAGE
#
# Environment: PLATFORM_IMAGE (aigc-admin/platform:<version in pyproject.toml>), ENGINE_IMAGE
# (aigc-admin/fastchat:0.2.36, engine.image's default), TRAINING_IMAGE (aigc-admin/training:0.2.36), BASE_IMAGE;
# TORCH_WHEEL (default: torch-2.13.0+cpu-cp311-*.whl from $PIP_FIND_LINKS or /opt/wheels); TORCH_SPEC and
# TORCH_INDEX_URL are passed to the engine build (CUDA: TORCH_SPEC=torch==2.13.0
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128, no wheel staged).
# Builds use the host network: they reach Debian/PyPI on an Engine without a default bridge (--bridge=none).
# Prints `built NAME in S s (SIZE)` per image on stdout; docker's output goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -1)"
BASE_IMAGE="${BASE_IMAGE:-aigc-base:bookworm}"
PLATFORM_IMAGE="${PLATFORM_IMAGE:-aigc-admin/platform:$version}"
ENGINE_IMAGE="${ENGINE_IMAGE:-aigc-admin/fastchat:0.2.36}"
TRAINING_IMAGE="${TRAINING_IMAGE:-aigc-admin/training:0.2.36}"
MARIADB_TEST_IMAGE="${MARIADB_TEST_IMAGE:-aigc-test/mariadb:10.11}"
REDIS_TEST_IMAGE="${REDIS_TEST_IMAGE:-aigc-test/redis:7}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0+cpu}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-}"

log() { echo "build: $*" >&2; }
size() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
build() {  # build NAME docker-build-args...  (BUILD_START: when the image's first build step began)
    local name=$1 start=${BUILD_START:-$SECONDS}; shift
    log "$name"
    docker build --network host -t "$name" "$@" >&2
    echo "built $name in $((SECONDS - start)) s ($(size "$name"))"
}
# Multi-stage: the `build` stage is tagged too (aigc-cache/*): with the classic builder its last image is
# otherwise untagged, and `docker image prune` (which a cache-keeping CI runs) would take the layers a warm
# build reuses (the dependency layers: minutes) with it. Costs nothing: the final build reuses every step.
build_staged() {  # build_staged NAME CACHE_NAME docker-build-args...
    local name=$1 cache=$2 start=$SECONDS; shift 2
    docker build --network host --target build -t "$cache" "$@" >&2
    BUILD_START=$start build "$name" "$@"
}

import_base() {
    [ "$BASE_IMAGE" = "aigc-base:bookworm" ] || { log "BASE_IMAGE=$BASE_IMAGE: not imported"; return; }
    local tarball have start=$SECONDS
    tarball="$(bash "$ROOT/scripts/prepare-base-image.sh")"
    have="$(docker image inspect -f '{{index .Config.Labels "aigc.base.tarball"}}' "$BASE_IMAGE" 2>/dev/null || true)"
    if [ "$have" = "$(basename "$tarball")" ]; then
        log "$BASE_IMAGE is up to date ($have)"
        return
    fi
    docker import --change "LABEL aigc.base.tarball=$(basename "$tarball")" "$tarball" "$BASE_IMAGE" >/dev/null
    echo "built $BASE_IMAGE in $((SECONDS - start)) s ($(size "$BASE_IMAGE"))"
}

torch_wheel() {
    if [ -n "${TORCH_WHEEL:-}" ]; then echo "$TORCH_WHEEL"; return; fi
    local want dir
    want="$(echo "${TORCH_SPEC#*==}" | sed 's/[^A-Za-z0-9.+]//g')"  # 2.13.0+cpu
    for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
        compgen -G "$dir/torch-$want-cp311-*.whl" >/dev/null && { compgen -G "$dir/torch-$want-cp311-*.whl" | head -1; return; }
    done
}

build_engine() {
    local ctx wheel
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' RETURN
    mkdir "$ctx/wheels"
    cp "$ROOT/docker/engine-requirements.txt" "$ctx/"
    wheel="$(torch_wheel)"
    if [ -n "$wheel" ]; then
        # a hard link when the temporary directory is on the same file system: no 190 MB copy
        ln "$wheel" "$ctx/wheels/" 2>/dev/null || cp "$wheel" "$ctx/wheels/"
        log "staged $(basename "$wheel")"
    elif [ -z "$TORCH_INDEX_URL" ] && [[ "$TORCH_SPEC" == *+* ]]; then
        log "no wheel for $TORCH_SPEC: set TORCH_WHEEL=PATH, or TORCH_INDEX_URL (https://download.pytorch.org/whl/cpu)"
        return 1
    fi
    build_staged "$ENGINE_IMAGE" aigc-cache/engine-build -f "$ROOT/docker/engine.Dockerfile" --build-arg "BASE=$BASE_IMAGE" \
        --build-arg "TORCH_SPEC=$TORCH_SPEC" --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL" "$ctx"
}

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(base platform engine training)
for target in "${targets[@]}"; do
    case "$target" in
        base) import_base ;;
        platform) build_staged "$PLATFORM_IMAGE" aigc-cache/platform-build -f "$ROOT/docker/Dockerfile" \
                      --build-arg "BASE=$BASE_IMAGE" "$ROOT" ;;
        engine) build_engine ;;
        training) build "$TRAINING_IMAGE" -f "$ROOT/docker/training.Dockerfile" \
                      --build-arg "ENGINE_IMAGE=$ENGINE_IMAGE" "$ROOT/src/aigc_admin/engine" ;;
        test-services)
            build "$MARIADB_TEST_IMAGE" -f "$ROOT/docker/test/mariadb.Dockerfile" --build-arg "BASE=$BASE_IMAGE" \
                "$ROOT/docker/test"
            build "$REDIS_TEST_IMAGE" -f "$ROOT/docker/test/redis.Dockerfile" --build-arg "BASE=$BASE_IMAGE" \
                "$ROOT/docker/test" ;;
        *) log "unknown target $target (base platform engine training test-services)"; exit 2 ;;
    esac
done

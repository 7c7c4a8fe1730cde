#!/usr/bin/env bash
# Make sure the Docker runtime integration tests can run: Debian's docker.io (dockerd, containerd,
# runc, docker-init) and a static busybox (the test image is FROM scratch + busybox; nothing is
# pulled). Installs only what is missing; exits 0 at once when both are present. Starts no daemon:
# the tests run their own private dockerd. Needs root (apt-get) the first time, on Debian 12.
set -euo pipefail

log() { echo "prepare-docker: $*" >&2; }

missing=()
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
busybox_static() {
    local bb
    for bb in /bin/busybox /usr/bin/busybox; do
        [ -x "$bb" ] && ! ldd "$bb" >/dev/null 2>&1 && return 0  # ldd fails on a static binary
    done
    return 1
}
busybox_static || missing+=(busybox-static)
[ "${#missing[@]}" = 0 ] && exit 0

log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
    log "apt-get update"
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

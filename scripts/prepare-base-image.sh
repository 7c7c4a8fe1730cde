#!/usr/bin/env bash
# Build (once) the local base image of docker/*.Dockerfile as a rootfs tarball, and print its path.
#
# Nothing can be pulled from a registry on the CI machines, so `FROM debian:bookworm-slim` is not an
# option: debootstrap makes a minimal Debian bookworm rootfs from Debian's packages instead (variant
# minbase + python3, python3-venv, ca-certificates, tini), and the tests `docker import` the tarball:
#
#   docker import "$(bash scripts/prepare-base-image.sh)" aigc-base:bookworm
#
# Cached: ${AIGC_CACHE_DIR:-~/.cache/aigc-admin}/base/bookworm-<hash>.tar.gz, where the hash covers
# this script's code (not its comments), the package list, the mirror and the extra CAs; a second run
# prints the path at once. The rootfs is not refreshed by itself: for Debian's later (security) updates,
# delete the tarball (or change AIGC_BASE_EPOCH, which is part of the hash, e.g. to the month).
# Progress goes to stderr, the path alone to stdout. Needs root (debootstrap chroots) and Debian's
# mirror; installs debootstrap when it is missing (apt-get).
#
# Like the images built from the mkimage/debuerreotype scripts, the rootfs gets: no docs, man pages or
# locales (dpkg path-exclude), no recommends, no apt caches, and a policy-rc.d that keeps package
# scripts from starting services during `docker build` (MariaDB's postinst would try).
#
# Extra CAs: the certificates in ${AIGC_BASE_EXTRA_CA_DIR:-/usr/local/share/ca-certificates} (the
# host's locally added ones, e.g. a TLS-intercepting proxy's) are trusted in the base as they are on
# the host; pip inside `docker build` needs that to reach PyPI behind such a proxy. Set
# AIGC_BASE_EXTRA_CA_DIR= (empty) to leave them out of an image you ship elsewhere.
set -euo pipefail

SUITE=bookworm
MIRROR="${AIGC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,ca-certificates,tini"
CACHE="${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/base"
EXTRA_CA_DIR="${AIGC_BASE_EXTRA_CA_DIR-/usr/local/share/ca-certificates}"

log() { echo "prepare-base-image: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

extra_cas=()
if [ -n "$EXTRA_CA_DIR" ] && [ -d "$EXTRA_CA_DIR" ]; then
    while IFS= read -r -d '' f; do extra_cas+=("$f"); done \
        < <(find "$EXTRA_CA_DIR" -maxdepth 1 -type f -name '*.crt' -print0 | sort -z)
fi

key="$(
    {
        grep -v '^[[:space:]]*#' "$0"  # the script's code: a comment edit keeps the cache
        echo "$SUITE $MIRROR $PACKAGES ${AIGC_BASE_EPOCH:-}"
        for f in "${extra_cas[@]}"; do sha256sum <"$f"; done
    } | sha256sum | cut -c1-16
)"
TARBALL="$CACHE/$SUITE-$key.tar.gz"

if [ -s "$TARBALL" ]; then
    log "cached: $TARBALL"
    echo "$TARBALL"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap </dev/null >/dev/null \
        || { as_root apt-get update -qq >&2
             as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap </dev/null >/dev/null; }
fi

start=$(date +%s)
mkdir -p "$CACHE"
work="$(mktemp -d "$CACHE/.build-XXXXXX")"
cleanup() {
    # debootstrap leaves /proc and /sys mounted when it fails half-way
    for m in proc sys dev/pts dev; do as_root umount -l "$work/rootfs/$m" 2>/dev/null || true; done
    as_root rm -rf "$work"
}
trap cleanup EXIT
rootfs="$work/rootfs"

log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR; once, ~1-2 min"
as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# --- trim and make it container-friendly (why: see the header) ---------------------------------
as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/01-container" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
as_root tee "$rootfs/etc/apt/apt.conf.d/01-container" >/dev/null <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
printf '#!/bin/sh\n# no service is started while an image is built\nexit 101\n' | as_root tee "$rootfs/usr/sbin/policy-rc.d" >/dev/null
as_root chmod 755 "$rootfs/usr/sbin/policy-rc.d"
as_root tee "$rootfs/etc/apt/sources.list" >/dev/null <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
for f in "${extra_cas[@]}"; do as_root install -m 644 "$f" "$rootfs/usr/local/share/ca-certificates/"; done
if [ "${#extra_cas[@]}" -gt 0 ]; then
    log "trusting ${#extra_cas[@]} extra CA(s) from $EXTRA_CA_DIR"
    as_root chroot "$rootfs" update-ca-certificates >/dev/null 2>&1  # (its rehash warns about the bundle)
fi
as_root rm -rf "$rootfs"/usr/share/doc/*/changelog* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
as_root truncate -s 0 "$rootfs/etc/machine-id" 2>/dev/null || true
as_root chroot "$rootfs" python3 -c 'import venv, ensurepip, ssl' >&2  # what the Dockerfiles rely on

as_root tar --numeric-owner --xattrs -C "$rootfs" -czf "$work/rootfs.tar.gz" .
as_root chown "$(id -u):$(id -g)" "$work/rootfs.tar.gz"
mv "$work/rootfs.tar.gz" "$TARBALL"
# older tarballs of this cache are stale (another key): keep only this one
find "$CACHE" -maxdepth 1 -name "$SUITE-*.tar.gz" ! -name "$(basename "$TARBALL")" -delete
log "built $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $(($(date +%s) - start)) s"
echo "$TARBALL"

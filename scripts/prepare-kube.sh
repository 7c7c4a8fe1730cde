#!/usr/bin/env bash
# Build (or reuse) a kube-apiserver for the Kubernetes integration tests, envtest-style.
#
# Debian ships no kube-apiserver binary, but its kubernetes 1.20.2 source package builds one.
# Result: ${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/kube/bin/kube-apiserver (path printed on stdout).
# GOPATH and GOCACHE live under the same cache dir so a rebuild is fast; the unpacked source is
# removed after a successful build, the downloaded source package is kept.
# Also makes sure etcd (etcd-server) and openssl are installed: the tests need both at run time.
# Needs root (apt-get) on Debian 12 the first time; later runs exit at once.
set -euo pipefail

CACHE="${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/kube"
BIN="$CACHE/bin/kube-apiserver"
K8S_VERSION=1.20.2
# What the binary is built from; a cached binary of another build is built again.
BUILD="$K8S_VERSION+reflect2-1.0.2"
STAMP="$BIN.build"
GO=/usr/lib/go-1.19/bin/go

log() { echo "prepare-kube: $*" >&2; }

APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
}

# install_missing PKG... : install the packages that are not installed yet (quietly).
install_missing() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null; then
        apt_update_once
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    fi
}

# Run-time needs, also when the binary is cached.
command -v etcd >/dev/null 2>&1 || install_missing etcd-server
command -v openssl >/dev/null 2>&1 || install_missing openssl

built() { [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$BUILD" ]; }
if built; then
    echo "$BIN"
    exit 0
fi

# One build at a time (parallel CI jobs sharing a cache); the winner's binary serves the others.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if built; then
    echo "$BIN"
    exit 0
fi

start=$(date +%s)
install_missing golang-1.19-go dpkg-dev golang-github-modern-go-reflect2-dev

# --- source package -------------------------------------------------------------------------
PKGDIR="$CACHE/source-package"
mkdir -p "$PKGDIR"
if ! ls "$PKGDIR"/kubernetes_*.dsc >/dev/null 2>&1; then
    if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
        src_list=/etc/apt/sources.list.d/aigc-admin-bookworm-src.sources
        if [ ! -e "$src_list" ]; then
            log "adding a deb-src entry for bookworm main ($src_list)"
            cat >"$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        fi
        APT_UPDATED=0
        apt_update_once
    fi
    log "downloading the kubernetes source package (bookworm: $K8S_VERSION)"
    (cd "$PKGDIR" && apt-get source -qq --download-only kubernetes >&2)
fi

# --- unpack into GOPATH ---------------------------------------------------------------------
export GOPATH="$CACHE/gopath"
export GOCACHE="$CACHE/gocache"
export GO111MODULE=off
export GOFLAGS=
export CGO_ENABLED=0
SRC="$CACHE/src/kubernetes-$K8S_VERSION"
rm -rf "$CACHE/src"
mkdir -p "$CACHE/src" "$GOPATH/src/k8s.io"
log "unpacking the source"
dpkg-source --no-check -x "$(ls "$PKGDIR"/kubernetes_*.dsc | head -n1)" "$SRC" >/dev/null
ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

# The vendored reflect2 1.0.1 iterates maps in a way Go 1.18+ changed: built with Go 1.19, kube-apiserver dies
# (SIGSEGV in aeshashbody via json-iterator) at the first custom resource it stores. Debian's reflect2 1.0.2 is
# that fix, with the same API.
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2

# --- generated OpenAPI definitions (not in the tarball) ------------------------------------------
OPENAPI_OUT=pkg/generated/openapi/zz_generated.openapi.go
log "building openapi-gen"
"$GO" build -o "$CACHE/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
# The packages that ask for OpenAPI definitions, found the way Makefile.generated_files does:
# every Go file outside ./vendor with a "// +k8s:" tag, staging/src/* named as vendor/*.
inputs=$(set +o pipefail; find . \( -path ./vendor -o -path './_*' -o -path './.*' -o -path ./debian \) -prune \
        -o -type f -name '*.go' -print0 \
    | xargs -0 grep -l '^// *+k8s:' | xargs grep -l '+k8s:openapi-gen=' \
    | xargs -n1 dirname | sed -e 's|^\./||' -e 's|^staging/src/|vendor/|' \
    | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
    | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
log "generating $OPENAPI_OUT"
"$CACHE/openapi-gen" \
    --logtostderr \
    --input-dirs "$inputs" \
    --output-base "$GOPATH/src" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi \
    --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    --report-filename /dev/null >&2

# --- kube-apiserver -------------------------------------------------------------------------
log "building kube-apiserver (a few minutes when cold)"
mkdir -p "$CACHE/bin"
# Version stamps, as hack/lib/version.sh sets them (--version and the /version endpoint).
ldflags="-s -w"
for pkg in component-base/version client-go/pkg/version; do
    for kv in "gitVersion=v$K8S_VERSION" "gitMajor=${K8S_VERSION%%.*}" "gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
              gitTreeState=clean; do
        ldflags="$ldflags -X k8s.io/kubernetes/vendor/k8s.io/$pkg.$kv"
    done
done
"$GO" build -trimpath -ldflags "$ldflags" -o "$BIN.tmp" ./cmd/kube-apiserver
mv "$BIN.tmp" "$BIN"
echo "$BUILD" >"$STAMP"

cd /
rm -rf "$CACHE/src" "$GOPATH/src/k8s.io/kubernetes" "$CACHE/openapi-gen"
log "built in $(( $(date +%s) - start )) s"
echo "$BIN"

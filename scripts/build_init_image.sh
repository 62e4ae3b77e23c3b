#!/usr/bin/env bash
# Build the secretsboot init image with podman, from Debian's packages alone (no image
# registry is needed), and print its size, its installed size and what a fetch imports.
#
#   scripts/build_init_image.sh            # image localhost/secretsboot-init:dev
#
# 1. A Debian bookworm root filesystem (debootstrap --variant=minbase, python3 and
#    ca-certificates only),
#    cached in $SECRETSBOOT_IMAGE_CACHE (default ~/.cache/secretsboot) between local
#    runs; CI starts from nothing. It is imported as localhost/secretsboot-base:bookworm.
# 2. The context of the build (build/init-image/): wheels/ holds the secretsboot wheel and
#    the wheel of the fetch path's only dependency (PyYAML, pinned by constraints.txt);
#    pip/ holds pip's wheel (Debian's python3 has no pip; it runs from its wheel).
# 3. `podman build --build-arg BASE_IMAGE=...` of the repository's Dockerfile.
#
# Needs root (debootstrap), podman, runc and debootstrap: .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${SECRETSBOOT_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsboot}"
ROOTFS="$CACHE/rootfs-bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE="localhost/secretsboot-base:bookworm"
IMAGE="${SECRETSBOOT_INIT_IMAGE:-localhost/secretsboot-init:dev}"
PYTHON="${PYTHON:-python3}"
CONTEXT="build/init-image"
# This machine's cgroups need runc and cgroupfs; the default ulimits are too high for it.
podman() { command podman --runtime runc --cgroup-manager=cgroupfs "$@"; }

# ca-certificates: the public roots Key Vault, Entra ID and ARM chain to (DigiCert
# Global Root G2, Microsoft RSA Root CA 2017); minbase has none, and a fetch from the
# real cloud would fail TLS verification. (A cached root filesystem without them is
# made again.)
# One build at a time on this machine: checkouts (and test runs) share the cache and
# the image tag.
mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9

if [ ! -x "$ROOTFS/usr/bin/python3" ] || [ ! -s "$ROOTFS/etc/ssl/certs/ca-certificates.crt" ]; then
    echo "== debootstrap bookworm (minbase + python3 + ca-certificates) into $ROOTFS"
    # an interrupted debootstrap leaves /proc mounted in its target
    for mounted in "$ROOTFS.tmp/proc" "$ROOTFS.tmp/sys"; do
        if mountpoint -q "$mounted" 2>/dev/null; then umount "$mounted"; fi
    done
    rm -rf "$ROOTFS.tmp" "$ROOTFS"
    mkdir -p "$CACHE"
    if ! debootstrap --variant=minbase --include=python3,ca-certificates bookworm \
            "$ROOTFS.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
        tail -20 "$CACHE/debootstrap.log" >&2
        echo "debootstrap failed (whole log: $CACHE/debootstrap.log)" >&2
        exit 1
    fi
    # what a container never uses: apt's lists and caches, documentation, man pages
    rm -rf "$ROOTFS.tmp"/var/lib/apt/lists/* "$ROOTFS.tmp"/var/cache/apt/*.bin \
        "$ROOTFS.tmp"/var/cache/apt/archives/*.deb "$ROOTFS.tmp"/usr/share/doc/* \
        "$ROOTFS.tmp"/usr/share/man/* "$ROOTFS.tmp"/usr/share/info/*
    mv "$ROOTFS.tmp" "$ROOTFS"
fi
stamp="$(stat -c %Y "$ROOTFS")"
if [ "$(podman image inspect --format '{{index .Labels "rootfs"}}' "$BASE" 2>/dev/null)" != "$stamp" ]; then
    echo "== podman import $BASE"
    tar -C "$ROOTFS" -c . | podman import --change "LABEL rootfs=$stamp" - "$BASE" >/dev/null
fi

# The image is rebuilt only when what goes into it changed (the tests call this script too).
source_hash="$(cat Dockerfile pyproject.toml constraints.txt \
    $(git ls-files -co --exclude-standard 'secretsboot/*.py' | LC_ALL=C sort) | sha256sum | cut -c1-16)"
if [ -z "${SECRETSBOOT_REBUILD_IMAGE:-}" ] && [ "$(podman image inspect --format \
        '{{index .Labels "secretsboot.source"}}' "$IMAGE" 2>/dev/null)" = "$source_hash" ]; then
    echo "== $IMAGE is up to date (sources $source_hash)"
else
echo "== wheels: secretsboot (no dependencies), PyYAML, pip"
rm -rf "$CONTEXT"
# setuptools builds in build/lib and never removes a file from it: a module deleted
# from secretsboot/ would still ship. Start from nothing.
rm -rf build/lib build/bdist.*
mkdir -p "$CONTEXT/wheels" "$CONTEXT/pip"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$CONTEXT/wheels" .
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -c constraints.txt \
    --dest "$CONTEXT/wheels" PyYAML
pip_wheel="$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$pip_wheel" ]; then
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$CONTEXT/pip" pip
else
    cp "$pip_wheel" "$CONTEXT/pip/"
fi

echo "== podman build $IMAGE (base $BASE)"
started=$(date +%s)
podman build --quiet --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    --build-arg BASE_IMAGE="$BASE" --label "secretsboot.source=$source_hash" \
    -f Dockerfile -t "$IMAGE" "$CONTEXT" >/dev/null
echo "built in $(($(date +%s) - started)) s"
fi

run() {
    podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --user 10001:10001 \
        --read-only --cap-drop=ALL --security-opt no-new-privileges --network none "$@"
}
size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
base_size="$(podman image inspect --format '{{.Size}}' "$BASE")"
echo "image $IMAGE: $((size / 1000000)) MB (base $((base_size / 1000000)) MB)"
run --entrypoint /bin/sh "$IMAGE" -c \
    'echo "installed: $(du -sk /opt/secretsboot | cut -f1) kB in /opt/secretsboot"; ls /opt/secretsboot/lib'
echo "== python -X importtime of 'secretsboot fetch --help' in the image (slowest 8, us)"
run --entrypoint python3 "$IMAGE" -X importtime -m secretsboot fetch --help 2>&1 >/dev/null \
    | sort -t'|' -k2 -n -r | sed -n 1,8p  # sed reads it all: head would SIGPIPE sort (exit 141)
run --entrypoint python3 "$IMAGE" -X importtime -m secretsboot fetch --help 2>&1 >/dev/null \
    | awk -F'|' '/import time:/ && $2 ~ /[0-9]/ {n++; t+=$2} END {printf "%d modules, %.1f ms cumulative self time\n", n, t/1000}'

# The secretsboot init-container image: only what `secretsboot fetch` and `run` need.
#
#   scripts/build_init_image.sh       # podman, a Debian base made by debootstrap, sizes
#
# The build context (made by the script) holds wheels/: the secretsboot wheel and the
# wheel of PyYAML (the fetch path's one dependency: YAML configs); and pip/: pip's wheel.
# The base is a build argument: any image with python3 (3.11+) and /bin/sh, e.g.
# `--build-arg BASE_IMAGE=python:3.11-slim-bookworm` where a registry is reachable,
# or the debootstrap root filesystem the script imports where none is.
#
# The package goes in with --no-deps, then everything fetch/run never import is
# removed (the CLI app, provision, audit, inject, spec, the sandbox with the demo), so
# the image holds no Typer, Rich, pydantic, SDK or sandbox. It runs as a numeric
# non-root user with an exec-form entrypoint, on a read-only root filesystem
# (bytecode is compiled at build time).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY pip/ /pip/
COPY wheels/ /wheels/
RUN set -eu; \
    PYTHONPATH="$(ls /pip/pip-*.whl)" python3 -m pip install --quiet --no-index \
        --no-deps --no-compile --target /opt/secretsboot/lib /wheels/*.whl; \
    cd /opt/secretsboot/lib/secretsboot; \
    rm -rf cli provision audit sandbox inject spec _yaml.py; \
    rm -rf /opt/secretsboot/lib/bin; \
    python3 -m compileall -q /opt/secretsboot/lib

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="secretsboot-init" \
      org.opencontainers.image.description="secretsboot init container: fetch a pod's secrets into a memory volume" \
      org.opencontainers.image.source="https://github.com/secretsboot/secretsboot" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/secretsboot /opt/secretsboot
ENV PYTHONPATH=/opt/secretsboot/lib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["python3", "-m", "secretsboot"]
CMD ["fetch", "--help"]

# The secretsboot init-container image: ghcr.io/secretsboot/secretsboot:<version>
#
#   docker build -t ghcr.io/secretsboot/secretsboot:0.1.0 .
#
# Two stages: the builder makes the wheel and installs it, with its runtime
# dependencies only (no test extras), into a virtual environment pinned by the
# same constraints.txt CI uses; the runtime stage copies that environment and
# runs as a numeric non-root user with an exec-form entrypoint (no shell is
# started), on a read-only root filesystem (bytecode is compiled at build time).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY secretsboot ./secretsboot
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/secretsboot \
 && /opt/secretsboot/bin/python -m pip install -c constraints.txt /wheels/secretsboot-*.whl \
 && /opt/secretsboot/bin/python -m pip uninstall --yes pip \
 && /opt/secretsboot/bin/python -m compileall -q /opt/secretsboot/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="secretsboot" \
      org.opencontainers.image.description="secretsboot init container: fetch a pod's secrets into a memory volume" \
      org.opencontainers.image.source="https://github.com/secretsboot/secretsboot" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/secretsboot /opt/secretsboot
ENV PATH=/opt/secretsboot/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["secretsboot"]
CMD ["--help"]

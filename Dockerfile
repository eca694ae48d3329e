# syntax=docker/dockerfile:1
# kvault operator image (Docker / Podman / Buildah). The same image is built without an
# engine by `python -m e2e.image build` (e2e/image.py): same Debian packages, same pinned
# wheels (requirements/image.lock), same venv path, user, environment and entrypoint.
#
#   docker build -t REGISTRY/kvault:TAG .
#
# Stage 1 (builder): kvault's wheel, the locked wheels (hash-checked) and pip's wheel.
FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/image.lock /wheels/requirements.lock
RUN pip download -q --no-deps --only-binary=:all: --require-hashes \
        -r /wheels/requirements.lock -d /wheels \
 && pip download -q --no-deps --only-binary=:all: pip==26.3 -d /wheels
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel -q --no-deps -w /wheels .

# Stage 2: Debian's python3 (3.11, the ABI of the cp311 wheels), SoftHSM2's PKCS#11 module
# (/usr/lib/softhsm/libsofthsm2.so) for the pkcs11 HSM plugin, CA certificates.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/kvault/kvault" \
      org.opencontainers.image.title="kvault" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libsofthsm2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* \
    /usr/share/doc/*/changelog* /usr/share/man/* /usr/share/locale/* /usr/share/info/* \
 && groupadd -g 65532 kvault \
 && useradd -u 65532 -g 65532 -d /tmp -M -s /usr/sbin/nologin kvault
# The venv is made by the image's own python3; pip runs from its wheel (not installed), so
# scripts get /opt/kvault/bin/python as their interpreter; pip byte-compiles everything.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python3 -m venv --without-pip /opt/kvault \
 && /opt/kvault/bin/python /wheels/pip-26.3-py3-none-any.whl/pip install -q --no-index \
        --no-cache-dir --find-links /wheels --require-hashes -r /wheels/requirements.lock \
 && /opt/kvault/bin/python /wheels/pip-26.3-py3-none-any.whl/pip install -q --no-index \
        --no-cache-dir --no-deps /wheels/kvault-*.whl \
 && /opt/kvault/bin/python /wheels/pip-26.3-py3-none-any.whl/pip check
# Read-only root file system: no byte-code writes; HOME and TMPDIR on /tmp (an emptyDir).
ENV PATH=/opt/kvault/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    LANG=C.UTF-8
USER 65532:65532
WORKDIR /
ENTRYPOINT ["kvault"]
CMD ["--help"]

# Three images from one file, one target each (compose.yaml builds all three):
#   web      the web app (FastAPI + uvicorn): no inference runtime, no torch
#   worker   the RQ worker: ONNX Runtime serving the exports, no torch
#   export   the init step: `imgclf prepare` makes the ONNX exports and the sample photos
#            (torch, CPU use only; the one image with torch, never serving a request)
#
#   docker build --target web -t imgclf-web .
#
# No `# syntax=` line on purpose: it makes BuildKit pull a frontend image from a registry, which
# fails where none is reachable (air-gapped sites, CI); the engine's built-in frontend builds this.
#
# The base image is pinned by digest. The digest was taken from public Dockerfiles that pin the
# same tag (no registry is reachable where this was written): check it with
# `docker buildx imagetools inspect python:3.11-slim-bookworm` before a release. Elsewhere, pass
# a local image: `--build-arg PYTHON_IMAGE=python:3.11-slim-bookworm` (compose: PYTHON_IMAGE).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --- a venv and the service's user; the dependency layers below grow it -------------------------
FROM ${PYTHON_IMAGE} AS base
# The venv has no pip of its own (16 MB): the base image's Python (/usr/local/bin/python3, in the
# official images and the local stand-ins) runs pip, which installs into the venv (PIP_PYTHON).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_PYTHON=/opt/venv/bin/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN /usr/local/bin/python3 -m venv --without-pip /opt/venv \
 && useradd --create-home --uid 10001 --user-group app \
 && mkdir -p /data/images /data/models /run/imgclf-secrets \
 && chown -R app:app /data /run/imgclf-secrets
WORKDIR /build

# --- dependency layers: rebuilt only when the dependencies change ------------------------------
# Each image's list comes from pyproject.toml's [tool.imgclf.images], pinned by constraints.txt.
# The lists are files of their own, so that editing the rest of pyproject.toml (tool settings)
# leaves the layers below in the build cache.
FROM base AS requirements
COPY pyproject.toml deploy/docker/requirements.py ./
RUN for role in web worker export; do python3 requirements.py $role > $role.txt; done

FROM base AS web-deps
COPY constraints.txt ./
COPY --from=requirements /build/web.txt ./
RUN /usr/local/bin/python3 -m pip install -c constraints.txt -r web.txt

FROM web-deps AS worker-deps
COPY --from=requirements /build/worker.txt ./
RUN /usr/local/bin/python3 -m pip install -c constraints.txt -r worker.txt

# torch from PyPI by default, the index every pip reaches: a CUDA build of several GB (torch
# will not import without its CUDA libraries), run on the CPU. Only the init step uses this image.
# Where PyTorch's CPU-only index is reachable, TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# makes it a fraction of that (torch==2.14.1 takes 2.14.1+cpu from there; not tried here, where
# that index is unreachable).
FROM worker-deps AS export-deps
ARG TORCH_INDEX_URL=
COPY --from=requirements /build/export.txt ./
RUN /usr/local/bin/python3 -m pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -c constraints.txt -r export.txt

# --- the service itself: one wheel per source change, installed into each image -----------------
# Built with setuptools in a venv of this stage only (no download per build, nothing left behind).
FROM base AS wheel
ENV PIP_PYTHON=
RUN /usr/local/bin/python3 -m venv /opt/build && /opt/build/bin/pip install setuptools==84.2.1
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# --- the three images: their dependency layer, the wheel, a user and a command -------------------
FROM web-deps AS web
ENV IMGCLF_HOST=0.0.0.0 \
    IMGCLF_PORT=8000 \
    IMGCLF_DATA_DIR=/data \
    IMGCLF_LOG_FORMAT=json
COPY --from=wheel /wheels /wheels
RUN /usr/local/bin/python3 -m pip install --no-deps /wheels/*.whl
USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
# Bash's /dev/tcp: no Python process started for each check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -q ' 200'"]
ENTRYPOINT ["imgclf"]
CMD ["web"]

FROM worker-deps AS worker
ENV IMGCLF_DATA_DIR=/data \
    IMGCLF_LOG_FORMAT=json \
    IMGCLF_WORKER_READY_FILE=/tmp/imgclf-worker-ready
COPY --from=wheel /wheels /wheels
RUN /usr/local/bin/python3 -m pip install --no-deps /wheels/*.whl
USER 10001:10001
WORKDIR /home/app
# Ready: the worker touches the file after each heartbeat (every 2 s) once its models are loaded.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "(( $(date +%s) - $(stat -c %Y \"$IMGCLF_WORKER_READY_FILE\") < 15 ))"]
ENTRYPOINT ["imgclf"]
CMD ["worker"]

FROM export-deps AS export
ENV IMGCLF_DATA_DIR=/data \
    IMGCLF_LOG_FORMAT=json
COPY --from=wheel /wheels /wheels
RUN /usr/local/bin/python3 -m pip install --no-deps /wheels/*.whl
USER 10001:10001
WORKDIR /home/app
ENTRYPOINT ["imgclf"]
CMD ["prepare"]

# syntax=docker/dockerfile:1
# One image for every role: `web` (the default command), `worker`, `prepare`.
#   docker build -t imgclf .
#   docker run --rm imgclf --help

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- dependencies: rebuilt only when pyproject.toml or constraints.txt change -----------------
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# A layer of its own (hence the DL3059 exception): torch is most of the image and changes least.
# CPU-only PyTorch from PyTorch's CPU wheel index: PyPI's default torch is a CUDA build of
# several GB that a CPU container never uses; the CPU build keeps the image a fraction of that.
# hadolint ignore=DL3059
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
WORKDIR /build
COPY pyproject.toml constraints.txt ./
# Only the project's declared dependencies with its `export` and `openvino` extras (not its
# source, not the test tools), pinned by constraints.txt; torch is already there and satisfies the pin.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; e = p['optional-dependencies']; print('\n'.join(p['dependencies'] + e['export'] + e['openvino']))" > requirements.txt \
 && pip install -c constraints.txt -r requirements.txt

# --- the service: source on top of the dependency layer ------------------------------------
FROM deps AS build
COPY README.md ./
COPY src ./src
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    IMGCLF_HOST=0.0.0.0 \
    IMGCLF_PORT=8000 \
    IMGCLF_DATA_DIR=/data \
    IMGCLF_IMAGE_DIR=/data/images \
    IMGCLF_MODEL_DIR=/data/models \
    IMGCLF_LOG_FORMAT=json
RUN useradd --create-home --uid 10001 --user-group app \
 && mkdir -p /data/images /data/models \
 && chown -R app:app /data
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
VOLUME ["/data/images", "/data/models"]
# The web role's liveness; the worker role overrides it (see compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["imgclf", "healthcheck"]
ENTRYPOINT ["imgclf"]
CMD ["web"]

# The FastChat engine image (engine.image, default aigc-admin/fastchat:0.2.36): model workers started by the
# platform's Docker/Kubernetes runtime, which passes the real command (`python3 -m fastchat.serve.model_worker …`).
#
# Context: a directory with engine-requirements.txt (docker/) and wheels/ (local wheels; may be empty). The
# torch wheel is never committed: docker/build.sh stages the context in a temporary directory.
#
#   CPU (default): wheels/torch-2.13.0+cpu-cp311-*.whl in the context, or
#                  --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
#   CUDA:          --build-arg TORCH_SPEC=torch==2.13.0 --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
#                  (PyPI's own torch==2.13.0 is a CUDA build too; the nvidia-* wheels bring CUDA, the host brings
#                  the driver through the NVIDIA container toolkit — any bookworm BASE does, no CUDA base image.)
ARG BASE=aigc-base:bookworm

FROM ${BASE} AS runtime
# A no-op on aigc-base (it has them); another bookworm base (debian:bookworm-slim) gets them here.
RUN if ! command -v tini >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
        && rm -rf /var/lib/apt/lists/*; \
    fi

FROM runtime AS build
# A local version (+cpu) cannot come from PyPI: the default can never silently become a multi-GB CUDA build.
ARG TORCH_SPEC=torch==2.13.0+cpu
ARG TORCH_INDEX_URL=
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_PROGRESS_BAR=off PIP_ROOT_USER_ACTION=ignore PIP_FIND_LINKS=/wheels PIP_CONSTRAINT=/tmp/build-constraints.txt
# wavedrom (fschat -> markdown2[all]) is an sdist whose setup_requires fetches setuptools-scm without its
# dependencies: setuptools-scm 10 then fails on `import vcs_versioning`; 9.x builds it.
RUN python3 -m venv /opt/engine && echo "setuptools-scm<10" >/tmp/build-constraints.txt
COPY wheels/ /wheels/
# torch alone first: the largest layer, kept when only the other pins change.
RUN /opt/engine/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
COPY engine-requirements.txt /tmp/
RUN /opt/engine/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/engine-requirements.txt \
    && /opt/engine/bin/pip check \
    && /opt/engine/bin/python -m pip uninstall -y -q pip

FROM runtime
# The same uid as the platform image: both write the shared storage directory (training data in, weights out).
RUN groupadd --system --gid 10001 aigc \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/aigc --create-home --shell /usr/sbin/nologin aigc
COPY --from=build /opt/engine /opt/engine
# python3 on PATH is the engine venv's (the runtime's templates run `python3`). Models come from mounts only:
# offline, nothing is downloaded. TINI_SUBREAPER: the Docker runtime also adds its own init (init=True), so tini
# is not PID 1 there; as a subreaper it still reaps, without a warning in the worker's log.
ENV PATH=/opt/engine/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TINI_SUBREAPER=1
# FastChat writes its log files to the working directory: the user's home is writable, the rest is not.
WORKDIR /home/aigc
USER 10001:10001
ENTRYPOINT ["tini", "--"]
# A stand-alone CPU model_worker of a model mounted at /models/model, registering with a controller on the
# same (host) network; the platform always passes its own command.
CMD ["python3", "-m", "fastchat.serve.model_worker", "--model-path", "/models/model", "--device", "cpu", \
     "--host", "0.0.0.0", "--port", "21002", "--worker-address", "http://127.0.0.1:21002", \
     "--controller-address", "http://127.0.0.1:21001"]

# One image for every Python service of the stack: Airflow (api-server, scheduler, dag-processor,
# triggerer, the `airflow db migrate` job), the MLflow tracking server and the prediction service.
# docker-compose.yml picks the service by command; run alone, the image serves predictions on 8000.
#   docker build -t retrain:local .          (docker compose build does the same)
# The image mirrors the repository under /opt/retrain, so every repo-relative default of the code
# (config/, gx/, dags/, airflow.cfg) resolves there, as it does in a checkout.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: a venv with the locked runtime dependencies and the project, byte-compiled ----------------
FROM ${PYTHON_IMAGE} AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The same uv as `make install`.
RUN pip install "uv==0.13.9" \
    && python -m venv /opt/venv

WORKDIR /opt/retrain
# requirements.txt is the lock. Used as constraints, it pins every package to its locked version while
# only the project's runtime closure (pyproject.toml dependencies) is installed: the lock also holds the
# test and lint tools, which the image leaves out. image-excludes.txt drops what a CPU image never loads.
COPY requirements.txt pyproject.toml README.md docker/image-excludes.txt ./
RUN uv pip install --python /opt/venv/bin/python \
        --requirements pyproject.toml --constraints requirements.txt --excludes image-excludes.txt

# Editable install: the packages stay at /opt/retrain/src and /opt/retrain/serving, so the code's
# REPO_ROOT is /opt/retrain, like a checkout (a wheel install would put it inside site-packages).
COPY src/ src/
COPY serving/ serving/
RUN uv pip install --python /opt/venv/bin/python --no-deps --editable . \
    && /opt/venv/bin/python -m compileall -q src serving

# ---- runtime: the venv, the repo files Airflow and the pipeline read, a non-root user -----------------
FROM ${PYTHON_IMAGE} AS runtime

ARG RETRAIN_UID=50000

LABEL org.opencontainers.image.title="retrain" \
      org.opencontainers.image.description="Daily retraining, gated promotion, serving and monitoring of a tabular forecasting model" \
      org.opencontainers.image.licenses="Apache-2.0"

# airflow.cfg expands RETRAIN_REPO and AIRFLOW_HOME for the DAG, plugin and log folders; RETRAIN_HOME is
# the data volume of docker-compose.yml.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RETRAIN_REPO=/opt/retrain \
    RETRAIN_HOME=/data \
    RETRAIN_SPEC=/opt/retrain/config/retail_demand.yaml \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_CONFIG=/opt/retrain/airflow.cfg

RUN groupadd --gid "${RETRAIN_UID}" retrain \
    && useradd --uid "${RETRAIN_UID}" --gid retrain --home-dir /opt/airflow --create-home \
        --shell /usr/sbin/nologin retrain

COPY --from=builder /opt/venv /opt/venv

WORKDIR /opt/retrain
# Code and config stay root-owned (read-only for the service user); GX state lives under RETRAIN_HOME
# (/data/gx: suites, results, Data Docs), seeded from the committed gx/great_expectations.yml.
COPY --from=builder /opt/retrain/src src/
COPY --from=builder /opt/retrain/serving serving/
COPY pyproject.toml airflow.cfg ./
COPY dags/ dags/
COPY plugins/ plugins/
COPY config/ config/
COPY monitoring/ monitoring/
COPY docker/entrypoint.sh docker/healthcheck.py docker/
COPY gx/ gx/

# Mount points of the compose named volumes, created here so a new volume inherits the owner; DAG and
# plugin files compiled once, since the service user cannot write __pycache__ next to them.
RUN mkdir -p /data /opt/airflow/logs /mlflow/artifacts \
    && chown "${RETRAIN_UID}:${RETRAIN_UID}" /data /opt/airflow/logs /mlflow/artifacts \
    && python -m compileall -q dags plugins

# Numeric, so runtimes (e.g. Kubernetes runAsNonRoot) can verify it is not root without reading /etc/passwd.
USER ${RETRAIN_UID}:${RETRAIN_UID}

# 8000 serving, 8080 Airflow api-server, 5000 MLflow, 8974 scheduler health.
EXPOSE 8000 8080 5000 8974

# Fits the default command (serving); compose gives each service its own probe.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/opt/retrain/docker/healthcheck.py", "http://127.0.0.1:8000/health"]

ENTRYPOINT ["/bin/sh", "/opt/retrain/docker/entrypoint.sh"]
CMD ["retrain", "serve", "--host", "0.0.0.0", "--port", "8000"]

# One image for every Python service of the stack: Airflow (api-server, scheduler, dag-processor,
# triggerer), the MLflow tracking server and the prediction service. docker-compose.yml picks the
# service by command; run alone it serves predictions on port 8000.
#   docker build -t retrain:local .

# ---- builder: a venv with the locked dependencies and the project, byte-compiled ----------------------
FROM python:3.11-slim AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The same uv as `make install`.
RUN pip install --no-cache-dir uv==0.13.9 \
    && python -m venv /opt/venv

WORKDIR /src
# requirements.txt is the lock; used as constraints it pins every package to the locked version while
# only the project's runtime closure is installed (the lock also holds the test and lint tools).
COPY requirements.txt pyproject.toml README.md docker/image-excludes.txt ./
RUN uv pip install --python /opt/venv/bin/python \
        --requirements pyproject.toml --constraints requirements.txt --excludes image-excludes.txt

COPY src/ src/
COPY serving/ serving/
RUN uv pip install --python /opt/venv/bin/python --no-deps .

# ---- runtime: the venv, the repo files Airflow and the pipeline read, a non-root user -----------------
FROM python:3.11-slim AS runtime

ARG RETRAIN_UID=50000

LABEL org.opencontainers.image.title="retrain" \
      org.opencontainers.image.description="Daily retraining, gated promotion, serving and monitoring of a tabular forecasting model" \
      org.opencontainers.image.licenses="Apache-2.0"

# Paths match the x-retrain-env block of docker-compose.yml; airflow.cfg expands RETRAIN_REPO and
# AIRFLOW_HOME for the DAG, plugin and log folders.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RETRAIN_REPO=/opt/retrain \
    RETRAIN_HOME=/data \
    RETRAIN_SPEC=/opt/retrain/config/retail_demand.yaml \
    RETRAIN_GX_ROOT=/opt/retrain/gx \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_CONFIG=/opt/retrain/airflow.cfg

RUN groupadd --gid "${RETRAIN_UID}" retrain \
    && useradd --uid "${RETRAIN_UID}" --gid retrain --home-dir /opt/airflow --create-home \
        --shell /usr/sbin/nologin retrain

COPY --from=builder /opt/venv /opt/venv

WORKDIR /opt/retrain
# Code and config stay root-owned (read-only for the service user); GX writes its config and suites.
COPY airflow.cfg ./
COPY dags/ dags/
COPY plugins/ plugins/
COPY config/ config/
COPY monitoring/ monitoring/
COPY docker/entrypoint.sh docker/healthcheck.py docker/
COPY --chown=retrain:retrain gx/ gx/

# Mount points of the compose named volumes: created here so new volumes inherit the owner.
RUN mkdir -p /data /opt/airflow/logs /mlflow/artifacts /opt/retrain/gx/uncommitted \
    && chown retrain:retrain /data /opt/airflow/logs /mlflow/artifacts /opt/retrain/gx/uncommitted

# Numeric, so runtimes (e.g. Kubernetes runAsNonRoot) can verify it is not root without reading /etc/passwd.
USER ${RETRAIN_UID}:${RETRAIN_UID}

# 8000 serving, 8080 Airflow api-server, 5000 MLflow, 8974 scheduler health.
EXPOSE 8000 8080 5000 8974

# Fits the default command (serving); compose sets each service's own probe.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/opt/retrain/docker/healthcheck.py", "http://127.0.0.1:8000/health"]

ENTRYPOINT ["/bin/sh", "/opt/retrain/docker/entrypoint.sh"]
CMD ["uvicorn", "serving.main:app", "--host", "0.0.0.0", "--port", "8000"]

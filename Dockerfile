# The service image: `otp api` (default) or `otp worker`; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 otp \
    && useradd --system --uid 10001 --gid otp --home-dir /app --no-create-home otp

# Dependencies first (cached until the lock changes): every package pinned with hashes.
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && pip install --require-hashes -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

WORKDIR /app
COPY pyproject.toml README* ./
COPY otp ./otp
COPY workflows ./workflows
COPY activities ./activities
COPY providers ./providers
COPY api ./api
COPY cli ./cli
COPY worker.py ./
# Bytecode is compiled at build time: the workflow sandbox re-imports the workflow module
# for every new workflow, and without a cache it would compile the source each time.
RUN pip install --no-deps . \
    && python -m compileall -q /opt/venv/lib \
    && rm -rf build *.egg-info \
    && mkdir -p /data \
    && chown otp:otp /data

USER otp:otp
ENV OTP_ENV=production \
    OTP_DATA_DIR=/data \
    OTP_API_HOST=0.0.0.0 \
    OTP_API_PORT=8000 \
    OTP_LOG_FORMAT=json

EXPOSE 8000
ENTRYPOINT ["otp"]
CMD ["api"]

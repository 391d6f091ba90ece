# The image of the API and the projector worker (docker-compose.yml runs both from it).
# Pinned to the exact Python the tests run on, so a release runs what was tested.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app

# Exact versions, each checked against its hash: the lock file CI installs from too.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY migrations ./migrations
# The dependencies are already installed from the lock; this adds only the package itself.
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 10001 oneworkforce \
    && mkdir -p /app/var \
    && chown oneworkforce:oneworkforce /app/var

# Not root. The embedded default keeps its SQLite database in /app/var, which this user owns:
# mount a volume there to keep it (or set DATABASE_URL and REDIS_URL for the full mode).
USER oneworkforce
VOLUME ["/app/var"]

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["oneworkforce"]
# Embedded mode out of the box: migrate, load the reference data and roles, then serve.
CMD ["serve", "--migrate", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1
# Build: wheels for wanbot and its dependencies, in a throwaway stage.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Run: the slim image, the wheels installed, no compiler, no source tree, not root.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 wanbot && mkdir /data && chown wanbot /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER wanbot
WORKDIR /home/wanbot
# The SQLite file lives on the /data volume; /healthz and /metrics on port 8081.
ENV DATABASE_URL=sqlite:////data/wanbot.sqlite3 \
    HEALTH_LISTEN=0.0.0.0:8081 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8081
# Slim images have no curl: ask /healthz with Python. Any answer but 200 (or none) fails.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('HEALTH_LISTEN', '0.0.0.0:8081').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=8)"]
# SIGTERM (docker stop) lets running steps finish, releases jobs and closes the database;
# give it more than Docker's default 10 s (docker-compose.yml sets stop_grace_period).
STOPSIGNAL SIGTERM
# The same command the README runs, so what CI tests is what the container starts.
ENTRYPOINT ["wanbot"]
CMD ["run"]

# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 wanbot && mkdir /data && chown wanbot /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER wanbot
WORKDIR /home/wanbot
ENV DATABASE_URL=sqlite:////data/wanbot.sqlite3 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
# The same command the README runs, so what CI tests is what the container starts.
ENTRYPOINT ["wanbot"]
CMD ["run"]

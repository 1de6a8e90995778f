# removal-desk: the Discord bot and its command line in one image.
#
#   docker build -t removal-desk .
#   docker compose up -d            (compose.yaml: the bot, its volumes and health check)
#
# Two stages: pdqhash and weighted-levenshtein (threatexchange's) are compiled from source (g++, which
# brings gcc), and the compilers stay in the first stage.
# The index and the ticket database live on volumes (/data/index read by the bot, /data/db written),
# never in the image: a new image keeps the ticket history. Runs as an unprivileged user.

ARG PYTHON=3.11

FROM python:${PYTHON}-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/removal-desk
ENV PATH=/opt/removal-desk/bin:$PATH
WORKDIR /src
# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir --no-deps . && removal-desk --version

FROM python:${PYTHON}-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin desk \
    && mkdir -p /data/index /data/db /data/backups \
    && chown -R desk:desk /data
COPY --from=build /opt/removal-desk /opt/removal-desk
# Settings for the image's layout; a mounted file ($REMOVAL_DESK_CONFIG) or variables add the rest
# (the [discord] ids; DISCORD_TOKEN from an env file or secret, never baked into the image).
# The health server binds every interface inside the container so Prometheus can reach /metrics
# through a published port; nothing is published unless compose.yaml or `docker run -p` says so.
ENV PATH=/opt/removal-desk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    REMOVAL_DESK_DISCORD_INDEX=/data/index \
    REMOVAL_DESK_TICKETS_DATABASE=/data/db/tickets.sqlite3 \
    REMOVAL_DESK_HEALTH_HOST=0.0.0.0 \
    REMOVAL_DESK_HEALTH_PORT=8080 \
    REMOVAL_DESK_LOGGING_FORMAT=json
USER desk
WORKDIR /data
VOLUME ["/data/index", "/data/db"]
EXPOSE 8080
# /healthz answers 200 when the gateway is connected, the index open and the database reachable;
# 503 (urlopen raises, python exits 1) or no answer marks the container unhealthy. The bot verifies
# the index's checksums before it starts: allow for that in start-period on a large index.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["removal-desk"]
CMD ["run"]

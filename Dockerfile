# Priemnaya: one process serving every configured institution.
#   docker build -t priemnaya .
#   docker run -v ./config:/config:ro -v priemnaya-data:/data -e TG_SCHOOL17=... priemnaya
# The config (and its FAQs/templates) is mounted read-only at /config; point its
# `storage: {path: /data/priemnaya.sqlite3}` at the /data volume. Tokens come from the
# environment (${VAR} in the config), never from the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# sqlite3: for online backups (`docker exec ... sqlite3 /data/priemnaya.sqlite3 ".backup ..."`)
RUN apt-get update \
    && apt-get install -y --no-install-recommends sqlite3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bots ./bots
COPY handlers ./handlers
COPY storage ./storage
COPY templates ./templates
RUN pip install .

RUN groupadd --system priemnaya \
    && useradd --system --gid priemnaya --home-dir /data --shell /usr/sbin/nologin priemnaya \
    && mkdir -p /data /config \
    && chown priemnaya:priemnaya /data
USER priemnaya
VOLUME ["/data"]

# /healthz and /metrics when the config has `server:` (host 0.0.0.0 inside a container)
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import json,sys,urllib.request as u; sys.exit(0 if json.load(u.urlopen('http://127.0.0.1:8080/healthz', timeout=4))['status'] == 'ok' else 1)" || exit 1

# SIGHUP (docker kill -s HUP) reloads the config, FAQs and templates without a restart
STOPSIGNAL SIGTERM
ENTRYPOINT ["priemnaya"]
CMD ["--log-format", "json", "--log-level", "INFO", "run", "-c", "/config/config.yaml"]

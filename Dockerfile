# Seam in a container, for self-hosting. Build and run:
#
#   docker build -t seam .
#   docker run -d --name seam --env-file .env -p 3000:3000 -v seam-data:/data seam
#
# `.env.example` lists every variable (copy it to `.env` and fill it in). The SQLite database — the durable job
# queue, settings changed in Slack, the audit and feedback logs — lives on the /data volume: keep that volume
# across upgrades and back it up. A config file and a knowledge folder can be mounted read-only beside the app:
#   -v "$PWD/seam.toml:/app/seam.toml:ro" -v "$PWD/knowledge:/app/knowledge:ro"
# (they are found there by default, or point SEAM_CONFIG and KNOWLEDGE_PATH anywhere else).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package needs (.dockerignore keeps secrets, databases, tests and virtualenvs out).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin seam \
    && mkdir /data \
    && chown seam:seam /data

# Never root: the process only needs to write its database.
USER seam

ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_PATH=/data/seam.db
VOLUME ["/data"]
EXPOSE 3000

# /healthz answers 503 when the database is unreachable or Seam is failing quietly (a revoked Slack token, a channel
# it may not post in, refused helpdesk credentials, jobs dying): the container then shows as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"

CMD ["python", "-m", "bot", "serve"]

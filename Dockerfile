# Peerboard application image: one image for the web processes and the one-shot migration job.
#
#   docker build -t peerboard:local .
#   docker run --rm -e PEERBOARD_ENV=demo -p 8000:8000 peerboard:local
#
# Two stages: the first builds a virtualenv from the source tree, the second copies only that
# virtualenv, so the runtime image holds no source checkout, no build tools and no pip cache.
# The installed package must therefore be self-contained (templates, static files, Alembic
# scripts and alembic.ini all shipped as package data; see pyproject.toml).

FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# .dockerignore keeps .venv, .git, local databases, caches and .env out of this context.
COPY . .
RUN pip install --no-cache-dir .


FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}"

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 peerboard \
 && useradd --system --uid 10001 --gid peerboard --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin peerboard \
 && install -d -o peerboard -g peerboard -m 0750 /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER peerboard:peerboard

EXPOSE 8000

# /healthz means "the process is up" (readiness, i.e. the database, is /readyz). The probe
# talks to 127.0.0.1 but sends the Host (and scheme) of PEERBOARD_BASE_URL, because in
# production the app only answers Host headers it trusts, and 127.0.0.1 is not one of them.
# urlopen raises on any 4xx/5xx or connection error, so a non-200 exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.parse as p, urllib.request as u; b = p.urlsplit(os.environ.get('PEERBOARD_BASE_URL') or 'http://localhost'); r = u.Request('http://127.0.0.1:8000/healthz', headers={'Host': b.netloc or 'localhost', 'X-Forwarded-Proto': b.scheme or 'http'}); sys.exit(0 if u.urlopen(r, timeout=4).status == 200 else 1)"]

CMD ["peerboard", "serve", "--host", "0.0.0.0", "--port", "8000"]

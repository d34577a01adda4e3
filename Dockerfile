# Tongban service image: one image, every service; pick one with the command, e.g.
#   docker run tongban serve approval --department minzheng
# Configuration comes from TONGBAN_* environment variables (shared/config.py).
FROM python:3.11-slim-bookworm

# a TrueType Chinese font for the PDF notices (reportlab cannot embed CFF fonts such as Noto CJK)
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# only what the package needs: keeps .venv, .git and local data out of the image
WORKDIR /tmp/tongban-src
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY tongban ./tongban
RUN pip install . \
    && cd / && rm -rf /tmp/tongban-src

RUN groupadd --system --gid 10001 tongban \
    && useradd --system --uid 10001 --gid tongban --home-dir /var/lib/tongban --no-create-home \
       --shell /usr/sbin/nologin tongban \
    && mkdir -p /var/lib/tongban \
    && chown tongban:tongban /var/lib/tongban

# in a container the HTTP server must listen on every interface; SQLite files (when no
# TONGBAN_DATABASE_URL is given) go to the data dir
ENV TONGBAN_HTTP_HOST=0.0.0.0 \
    TONGBAN_HTTP_PORT=8000 \
    TONGBAN_DATA_DIR=/var/lib/tongban

WORKDIR /var/lib/tongban
USER 10001:10001
EXPOSE 8000

# /health answers 200 when the database and the broker are reachable, 503 otherwise
# (urlopen raises on 503, so the exit code is non-zero)
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('TONGBAN_HTTP_PORT') or '8000'; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/health' % port, timeout=4).status == 200 else 1)"]

# `tongban serve` stops its services cleanly on Ctrl-C (KeyboardInterrupt); SIGTERM would end it abruptly
STOPSIGNAL SIGINT
ENTRYPOINT ["tongban"]
CMD ["serve", "intake"]

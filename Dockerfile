FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
# The versions the tests ran on (the lock holds the dev tools too: a few MB more, one lock).
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY schemas schemas
COPY streams streams
COPY agents agents
COPY config config
COPY bench bench
RUN pip install --no-cache-dir --no-deps . && pip check
# The worker runs as an unprivileged user that owns only its state directory.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin amlstream \
    && mkdir -p /var/lib/amlstream && chown amlstream /var/lib/amlstream
USER amlstream
# The web server (/ready, /live) listens on every interface of the container: publish its port
# on the host's loopback only (docker-compose.yml does).
ENV AMLSTREAM_RULES_PATH=/app/config/rules.yaml \
    AMLSTREAM_DATA_DIR=/var/lib/amlstream \
    AMLSTREAM_WEB_HOST=0.0.0.0 \
    AMLSTREAM_WEB_PORT=6066
EXPOSE 9464 6066
# Healthy once the worker has joined its group, has partitions and is processing (/ready: 200;
# 503 before that and while it rebalances). The start period covers joining and restoring state.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('AMLSTREAM_WEB_PORT', '6066'), timeout=3)"]
ENTRYPOINT ["amlstream"]
CMD ["worker"]

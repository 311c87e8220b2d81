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
ENV AMLSTREAM_RULES_PATH=/app/config/rules.yaml \
    AMLSTREAM_DATA_DIR=/var/lib/amlstream
EXPOSE 9464
ENTRYPOINT ["amlstream"]
CMD ["worker"]

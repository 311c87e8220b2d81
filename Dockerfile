FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY streams streams
COPY agents agents
COPY config config
RUN pip install --no-cache-dir .
ENV AMLSTREAM_RULES_PATH=/app/config/rules.yaml \
    AMLSTREAM_DATA_DIR=/var/lib/amlstream
EXPOSE 9464
ENTRYPOINT ["amlstream"]
CMD ["worker"]

# Headcount in a container: `docker build -t headcount .`, then
# `docker run -p 8000:8000 -v headcount:/var/lib/headcount headcount`.
# docs/deployment.md ("Docker") says what each line is for; compose.yaml runs the scale-out shape.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Wheels of Headcount and its pinned server dependencies; nothing is compiled in the final image.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[server]"

FROM python:3.11-slim
# A system user with no shell and no password; its home is the data directory.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/headcount \
        --shell /usr/sbin/nologin headcount \
    && mkdir -p /var/lib/headcount/credentials \
    && chown -R headcount:headcount /var/lib/headcount \
    && chmod 0700 /var/lib/headcount /var/lib/headcount/credentials
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "headcount[server]" \
    && rm -rf /wheels

USER headcount
WORKDIR /var/lib/headcount
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HEADCOUNT_HOST=0.0.0.0 \
    HEADCOUNT_PORT=8000 \
    HEADCOUNT_DATABASE_URL=sqlite:////var/lib/headcount/headcount.db \
    HEADCOUNT_STATE_FILE=/var/lib/headcount/live-state.json \
    HEADCOUNT_CREDENTIALS_FILE=/var/lib/headcount/credentials/headcount.env
VOLUME ["/var/lib/headcount"]
EXPOSE 8000

# Alive = /healthz answers 200 (balancers use /readyz for "send me traffic").
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HEADCOUNT_PORT', '8000') + '/healthz', timeout=2)"]

# SIGTERM stops it cleanly (the live state is saved, /readyz answers 503 while it drains).
STOPSIGNAL SIGTERM
CMD ["headcount", "serve"]

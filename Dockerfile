# hub as a service: small, non-root, the database on a volume, healthy while `hub status` is.
#
#   docker build -t hub .
#   docker run -d --name hub \
#     -v hub-data:/data -v "$PWD/hub.toml:/config/hub.toml:ro" \
#     -e STRIPE_API_KEY -e HUBSPOT_ACCESS_TOKEN -e ZENDESK_API_TOKEN -e BUILTWITH_API_KEY \
#     hub
#
# In hub.toml set [hub] database = "/data/hub.db". See README.md, "Run it for real".
# Try it without credentials: docker run --rm -v hub-data:/data hub demo --db /data/demo.db
# PYTHON_IMAGE picks another Python 3.10+ base (a mirror, a pinned digest).

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md config.example.toml ./
COPY hub ./hub
COPY connectors ./connectors
COPY mappings ./mappings
COPY plugins ./plugins
# A virtual environment: the same layout on any base image, copied whole to the runtime.
RUN python3 -m venv /opt/hub \
    && /opt/hub/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/hub/bin/hub --version

FROM ${PYTHON_IMAGE}
RUN useradd --system --create-home --uid 10001 hub \
    && mkdir -p /data /config \
    && chown hub:hub /data \
    && chmod 700 /data
COPY --from=build /opt/hub /opt/hub
ENV PATH=/opt/hub/bin:$PATH \
    HUB_CONFIG=/config/hub.toml \
    HUB_BUDGETS=/data/budgets.sqlite \
    PYTHONUNBUFFERED=1
USER hub
WORKDIR /data
VOLUME ["/data"]
HEALTHCHECK --interval=5m --timeout=60s --start-period=2m \
    CMD ["hub", "status"]
ENTRYPOINT ["hub"]
CMD ["--log-json", "run"]

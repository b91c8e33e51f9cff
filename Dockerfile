# hub as a service: small, non-root, the database on a volume, healthy while `hub status` is.
#
#   docker build -t hub .
#   docker run -d --name hub \
#     -v hub-data:/data -v "$PWD/hub.toml:/config/hub.toml:ro" \
#     -e STRIPE_API_KEY -e HUBSPOT_ACCESS_TOKEN -e ZENDESK_API_TOKEN -e BUILTWITH_API_KEY \
#     hub
#
# In hub.toml set [hub] database = "/data/hub.db". See README.md, "Run it for real".

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md config.example.toml ./
COPY hub ./hub
COPY connectors ./connectors
COPY mappings ./mappings
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --system --create-home --uid 10001 hub \
    && mkdir -p /data /config \
    && chown hub:hub /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels cs-hub && rm -rf /wheels
USER hub
WORKDIR /data
VOLUME ["/data"]
ENV HUB_CONFIG=/config/hub.toml \
    PYTHONUNBUFFERED=1
HEALTHCHECK --interval=5m --timeout=60s --start-period=2m \
    CMD ["hub", "status", "--json"]
ENTRYPOINT ["hub"]
CMD ["--log-json", "run"]

# Build: docker build -t callcaptions-bridge .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/bridge ./cmd/bridge
# An empty data directory owned by the runtime user: a new volume copies
# it, so the bridge can write recordings and its API token there.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /bridge
COPY --from=build --chown=65532:65532 /out/data /data
# Listen on every interface inside the container; recordings go to the
# volume. The dashboard, API and caption sockets need a token: without
# BRIDGE_API_TOKEN one is generated into /data/api-token (kept across
# restarts with the volume) and the dashboard link that carries it is
# printed to stdout (docker logs). Browsers reaching the container by a
# name other than localhost need it in BRIDGE_PUBLIC_URL or
# BRIDGE_ALLOWED_HOSTS. The health check asks /healthz over loopback,
# which every Host rule allows.
ENV BRIDGE_ADDR=0.0.0.0:8080 BRIDGE_DATA=/data BRIDGE_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
USER nonroot
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/bridge", "healthcheck"]
ENTRYPOINT ["/bridge"]

# Build: docker build -t callcaptions-bridge .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/bridge ./cmd/bridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /bridge
# Listen on every interface inside the container; recordings go to the volume.
ENV BRIDGE_ADDR=0.0.0.0:8080 BRIDGE_DATA=/data BRIDGE_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/bridge"]

# syntax=docker/dockerfile:1
#
# brisk's image: one static binary (every role: api, payment, migrate, seed,
# load, canary...) on a distroless base, run as a non-root user.
#   docker build -t brisk:dev .
#   docker run --rm -p 8080:8080 brisk:dev            # brisk up, embedded store
#   docker run --rm brisk:dev api --db postgres://... # one role
# The Kubernetes manifests (deploy/k8s) run it with a read-only root
# filesystem: brisk writes nothing outside its --data-dir / volumes.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo: SQLite is pure Go), reproducible paths, no symbol tables.
# internal/deploytest runs this exact command and checks the binary is static.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/brisk ./cmd/brisk

# distroless/static: CA certificates, time zones and a nonroot user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/brisk /usr/local/bin/brisk
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/brisk"]
CMD ["up", "--addr", ":8080", "--data-dir", "/home/nonroot/brisk-data"]

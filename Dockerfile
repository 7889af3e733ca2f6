# publisher: one static binary in a minimal non-root image.
#
# Base images are build arguments so the image can be built where no registry is
# reachable, against local stand-ins (scripts/image-test.sh makes them). VERSION
# is stamped into the binary (publisher version) and the image's labels.
#   podman build --format docker --build-arg VERSION=1.2.0 -t publisher .
#   podman build --format docker --build-arg GO_IMAGE=localhost/go-standin \
#                --build-arg RUNTIME_IMAGE=localhost/runtime-standin -t publisher .
# (--format docker: an OCI image config cannot carry the HEALTHCHECK.)
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# Where modules come from; the image test passes the host's settings through.
ARG GOPROXY=https://proxy.golang.org,direct
ARG GOFLAGS=
ARG VERSION=dev
ENV CGO_ENABLED=0 GOPROXY=${GOPROXY} GOFLAGS=${GOFLAGS} GOTOOLCHAIN=local \
    GOCACHE=/root/.cache/go-build
WORKDIR /src
# Modules first: this layer stays cached while only the source changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Templates are embedded (package templates); time zone data too (time/tzdata in
# cmd/publisher), so the runtime image needs neither files nor a shell.
# The build cache is kept between builds (a cache mount), so a one-file change
# recompiles that package and links, not every dependency.
# /out/data becomes the data volume, owned by the unprivileged user.
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X publisher/internal/cli.stampedVersion=${VERSION}" \
      -o /out/publisher ./cmd/publisher \
 && mkdir -p /out/data \
 && chown 65532:65532 /out/data

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=
ARG CREATED=
LABEL org.opencontainers.image.title="publisher" \
      org.opencontainers.image.description="Feeds, a static archive and email digests from a folder of pieces" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/publisher /usr/local/bin/publisher
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /srv/publisher
# /metrics and /readyz on 9090, apart from the site on 8080: publish 9090 only
# to the monitoring.
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    PUBLISHER_HTTP_LISTEN=0.0.0.0:8080 \
    PUBLISHER_HTTP_ADMIN_LISTEN=0.0.0.0:9090 \
    PUBLISHER_DATA_DIR=/data \
    PUBLISHER_OUTPUT_DIR=/data/public \
    PUBLISHER_MAIL_OUTBOX_DIR=/data/outbox
# distroless's "nonroot" user, by number so a base without /etc/passwd works too.
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["publisher", "healthcheck"]
ENTRYPOINT ["publisher"]
CMD ["daemon"]

# publisher: one static binary in a minimal non-root image.
#
# Base images are build arguments so the image can be built where no registry is
# reachable, against local stand-ins (scripts/image-test.sh makes them).
#   podman build -t publisher .
#   podman build --build-arg GO_IMAGE=localhost/go-standin \
#                --build-arg RUNTIME_IMAGE=localhost/runtime-standin -t publisher .
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# Where modules come from; the image test passes the host's settings through.
ARG GOPROXY=https://proxy.golang.org,direct
ARG GOFLAGS=
ENV CGO_ENABLED=0 GOPROXY=${GOPROXY} GOFLAGS=${GOFLAGS} GOTOOLCHAIN=local
WORKDIR /src
# Modules first: this layer stays cached while only the source changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Templates are embedded (package templates); time zone data too (time/tzdata in
# cmd/publisher), so the runtime image needs neither files nor a shell.
# /out/data becomes the data volume, owned by the unprivileged user.
RUN go build -trimpath -ldflags "-s -w" -o /out/publisher ./cmd/publisher \
 && mkdir -p /out/data \
 && chown 65532:65532 /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/publisher /usr/local/bin/publisher
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /srv/publisher
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    PUBLISHER_HTTP_LISTEN=0.0.0.0:8080 \
    PUBLISHER_DATA_DIR=/data \
    PUBLISHER_OUTPUT_DIR=/data/public \
    PUBLISHER_MAIL_OUTBOX_DIR=/data/outbox
# distroless's "nonroot" user, by number so a base without /etc/passwd works too.
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["publisher", "healthcheck"]
ENTRYPOINT ["publisher"]
CMD ["daemon"]

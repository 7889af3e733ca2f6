#!/usr/bin/env bash
# Builds the container image with podman against local stand-in base images (no
# registry is reachable here, and there is no Docker engine), runs it, checks that
# it answers /healthz and serves feed.xml, stops it with SIGTERM, then removes the
# container, the images and all podman state. Also lints the Dockerfile.
#
# Installs podman, buildah, runc and busybox-static with apt-get when missing.
# Environment: IMAGE_TEST_PORT (default 18080; the admin port is the next one),
# IMAGE_TEST_KEEP=1 keeps the temp dir for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

log() { printf 'image-test: %s\n' "$*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}

# --- tools -------------------------------------------------------------------
need=()
command -v podman >/dev/null || need+=(podman)
command -v buildah >/dev/null || need+=(buildah)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v curl >/dev/null || need+=(curl)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! grep -q 'not a dynamic' <<<"$(ldd /bin/busybox 2>&1 || true)"; then
	fail "/bin/busybox is not statically linked: install busybox-static"
fi
GOROOT_HOST="$(go env GOROOT)"
[ -x "$GOROOT_HOST/bin/go" ] || fail "no Go toolchain at $GOROOT_HOST"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -s "$CA_BUNDLE" ] || fail "no CA bundle at $CA_BUNDLE (install ca-certificates)"

# --- podman settings for this sandbox, in a temp dir ---------------------------
work="$(mktemp -d /tmp/publisher-image-test.XXXXXX)"
tag="image-test-$$"
image="localhost/publisher:$tag"
go_standin="localhost/publisher-go-standin:$tag"
runtime_standin="localhost/publisher-runtime-standin:$tag"
container="publisher-image-test-$$"
port="${IMAGE_TEST_PORT:-18080}"
admin_port=$((port + 1))
version="image-test-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
tmp_dir = "$work/libpod-tmp"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$work/run"
graphroot = "$work/store"
EOF
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"

cleanup() {
	status=$?
	if [ $status -ne 0 ] && podman container exists "$container" 2>/dev/null; then
		log "container logs:"
		podman logs "$container" 2>&1 | tail -n 60 >&2 || true
	fi
	podman rm -f -t 5 "$container" >/dev/null 2>&1 || true
	podman rm -f -t 5 "$container-build" >/dev/null 2>&1 || true
	podman rmi -f "$image" "$go_standin" "$runtime_standin" >/dev/null 2>&1 || true
	buildah rm --all >/dev/null 2>&1 || true
	if [ "${IMAGE_TEST_KEEP:-}" = 1 ]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
	exit $status
}
trap cleanup EXIT

# --- lint the Dockerfile -------------------------------------------------------
log "linting Dockerfile with dockerfile-utils"
mkdir -p "$work/npm"
(cd "$work/npm" && npm install --silent --no-audit --no-fund --prefix . dockerfile-utils@0.16.3 >/dev/null)
"$work/npm/node_modules/.bin/dockerfile-utils" lint "$repo/Dockerfile" || fail "Dockerfile lint"

# --- stand-in base images --------------------------------------------------------
# The Go stage: the host's toolchain, CA certificates and a static busybox for
# RUN's /bin/sh. The runtime: nothing but CA certificates and the user entries
# distroless static:nonroot provides.
rootfs="$work/rootfs-go"
mkdir -p "$rootfs/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/root" "$rootfs/go"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

log "making the Go stand-in image from $GOROOT_HOST"
ctr="$(buildah from scratch)"
buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
buildah copy --quiet "$ctr" "$GOROOT_HOST" /usr/local/go >/dev/null
buildah config --env PATH=/go/bin:/usr/local/go/bin:/bin --env GOPATH=/go --env HOME=/root \
	--env GOTOOLCHAIN=local --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
	--workingdir / "$ctr"
buildah commit --quiet "$ctr" "$go_standin" >/dev/null
buildah rm "$ctr" >/dev/null

runtime_root="$work/rootfs-runtime"
mkdir -p "$runtime_root/etc/ssl/certs" "$runtime_root/tmp" "$runtime_root/home/nonroot"
cp "$CA_BUNDLE" "$runtime_root/etc/ssl/certs/ca-certificates.crt"
cp "$rootfs/etc/passwd" "$rootfs/etc/group" "$runtime_root/etc/"
chmod 1777 "$runtime_root/tmp"
log "making the runtime stand-in image"
ctr="$(buildah from scratch)"
buildah copy --quiet "$ctr" "$runtime_root" / >/dev/null
buildah config --user 65532:65532 "$ctr"
buildah commit --quiet "$ctr" "$runtime_standin" >/dev/null
buildah rm "$ctr" >/dev/null

# --- build ------------------------------------------------------------------------
# Modules: the host's module cache is mounted into RUN steps, so `go mod download`
# finds what is already there; anything missing comes through the host's proxy
# (host network).
build_args=(
	--isolation chroot --network host
	--format docker # OCI image configs cannot carry HEALTHCHECK
	--build-arg "GO_IMAGE=$go_standin"
	--build-arg "RUNTIME_IMAGE=$runtime_standin"
	--build-arg "GOPROXY=$(go env GOPROXY)"
	--build-arg "VERSION=$version"
	--build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || true)"
	--build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)
modcache="$(go env GOMODCACHE)"
if [ -d "$modcache" ]; then
	build_args+=(--volume "$modcache:/go/pkg/mod")
fi
log "building $image"
podman build "${build_args[@]}" -t "$image" -f Dockerfile . >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	fail "podman build"
}

# --- inspect ------------------------------------------------------------------------
user="$(podman image inspect --format '{{.Config.User}}' "$image")"
[ "$user" = "65532:65532" ] || fail "image runs as user '$user', want 65532:65532"
entry="$(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$image")"
[ "$entry" = '["publisher"] ["daemon"]' ] || fail "entrypoint/cmd: $entry"
podman image inspect --format '{{json .Config.ExposedPorts}}' "$image" | grep -q '8080/tcp' || fail "port 8080 not exposed"
podman image inspect --format '{{json .Config.Volumes}}' "$image" | grep -q '"/data"' || fail "/data is not a volume"
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q '"publisher","healthcheck"' || fail "no HEALTHCHECK running publisher healthcheck"
label="$(podman image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$image")"
[ "$label" = "$version" ] || fail "org.opencontainers.image.version label '$label', want $version"
# The image carries the binary and nothing of the repository; the version is
# stamped into it.
got="$(podman run --rm --entrypoint /usr/local/bin/publisher "$image" version 2>&1)" || fail "publisher version does not run in the image: $got"
grep -q "publisher $version" <<<"$got" || fail "publisher version says '$got', want $version"
log "version $version in the label and the binary"

# --- run: the daemon serves what its first run built -------------------------------
mounts=(
	-v "$repo/content:/srv/publisher/content:ro"
	-v "$repo/publisher.yaml:/srv/publisher/publisher.yaml:ro"
)
[ -d "$repo/subscribers" ] && mounts+=(-v "$repo/subscribers:/srv/publisher/subscribers:ro")
base="http://127.0.0.1:$port/"
log "starting the daemon on $base"
# --health-interval=disable: there is no systemd for a timer; the check is run
# by hand below. (podman 4 still logs that it cannot reach systemd: noise, kept
# in podman-run.log.)
podman run -d --name "$container" -p "127.0.0.1:$port:8080" -p "127.0.0.1:$admin_port:9090" "${mounts[@]}" \
	--health-interval=disable \
	-e PUBLISHER_CONFIG=/srv/publisher/publisher.yaml \
	-e PUBLISHER_SITE_BASE_URL="$base" \
	-e PUBLISHER_SCHEDULE=@hourly \
	"$image" >/dev/null 2>"$work/podman-run.log" || {
	cat "$work/podman-run.log" >&2
	fail "podman run"
}

wait_for() { # url, what
	for _ in $(seq 1 120); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then
			return 0
		fi
		if [ "$(podman inspect --format '{{.State.Running}}' "$container")" != true ]; then
			fail "the container exited while waiting for $2"
		fi
		sleep 0.5
	done
	fail "timed out waiting for $2 at $1"
}
wait_for "${base}healthz" "/healthz"
code="$(curl -sS -o /dev/null -w '%{http_code}' "${base}healthz")"
[ "$code" = 200 ] || fail "/healthz answered $code"
log "/healthz: 200"

# No run at start: the daemon builds the site for its settings before serving it.
wait_for "${base}feed.xml" "feed.xml from the build at start"
headers="$(curl -sS -D - -o "$work/feed.xml" "${base}feed.xml")"
grep -qi '^content-type: application/rss+xml; charset=utf-8' <<<"$headers" || fail "feed.xml content type: $headers"
grep -q '<rss' "$work/feed.xml" || fail "feed.xml is not RSS"
etag="$(grep -i '^etag:' <<<"$headers" | cut -d' ' -f2- | tr -d '\r')"
code="$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "${base}feed.xml")"
[ "$code" = 304 ] || fail "conditional GET of feed.xml answered $code"
log "feed.xml: served as application/rss+xml, 304 on If-None-Match"

admin="http://127.0.0.1:$admin_port/"
code="$(curl -sS -o /dev/null -w '%{http_code}' "${admin}readyz")"
[ "$code" = 200 ] || fail "/readyz on the admin port answered $code"
curl -fsS "${admin}metrics" | grep -q '^publisher_runs_total' || fail "/metrics on the admin port"
code="$(curl -sS -o /dev/null -w '%{http_code}' "${base}metrics")"
[ "$code" = 404 ] || fail "/metrics on the public port answered $code"
log "/readyz and /metrics on the admin port only"

podman exec "$container" publisher healthcheck || fail "publisher healthcheck inside the container"
# The image's own HEALTHCHECK instruction, as the engine runs it.
podman healthcheck run "$container" || fail "the image's HEALTHCHECK reports unhealthy"
log "publisher healthcheck and the image HEALTHCHECK: ok"

# SIGTERM: graceful stop, exit status 0.
# (podman without systemd logs that it cannot remove a health-check timer: noise.)
podman stop -t 100 "$container" >/dev/null 2>>"$work/podman-run.log"
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$container")"
[ "$exit_code" = 0 ] || fail "the daemon exited with $exit_code after SIGTERM"
log "SIGTERM: exit 0"

# One-shot mode in the same image: `publisher build`.
podman run --rm --name "$container-build" "${mounts[@]}" \
	-e PUBLISHER_CONFIG=/srv/publisher/publisher.yaml "$image" build >"$work/oneshot.log" 2>&1 || {
	cat "$work/oneshot.log" >&2
	fail "publisher build in the image"
}
log "one-shot build: ok"
log "PASS"

# syntax=docker/dockerfile:1
# waggle's container image, a drop-in for amazon/aws-xray-daemon.
#
#   docker build -t waggle .
#   docker run --rm -p 127.0.0.1:4318:4318 -p 127.0.0.1:13133:13133 waggle
#
# For amd64 and arm64 at once (BuildKit; arm64 is built under QEMU emulation on an amd64 host):
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/waggle:TAG --push .
#
# The build stage runs the same locked release build as CI (scripts/test); a test
# (tests/e2e/test_packaging.py) fails if the two commands ever differ. The runtime stage is
# distroless (glibc, libgcc, CA certificates; no shell, no package manager) and runs as the
# non-root user `nonroot` (uid 65532).

# ---- build ---------------------------------------------------------------------------------
# Bookworm, so the binary needs no newer glibc than the Debian 12 runtime below has.
FROM rust:1.95-bookworm AS build
ARG TARGETPLATFORM
WORKDIR /src
COPY . .
# Cargo's registry and target directory are BuildKit cache mounts (one target per platform), so
# a change to waggle's own code rebuilds only waggle, not its ~400 dependencies. They are not
# part of the image, so the same step puts together what the runtime stage adds, as one
# directory tree (COPY keeps the symbolic links in it): the binary, stripped (`install -s`);
# /xray (the daemon's public ECR image) and /usr/bin/xray (its Docker Hub image) pointing at
# it, for compose files and task definitions that override the entrypoint with the daemon's
# paths; the data directory, owned by `nonroot` so a fresh named volume is too.
RUN --mount=type=cache,id=waggle-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=waggle-target-$TARGETPLATFORM,target=/src/target,sharing=locked \
    cargo build --release --locked --bin waggle \
    && mkdir -p /rootfs/usr/local/bin /rootfs/usr/bin /rootfs/var/lib/waggle \
    && install -m 0755 -s target/release/waggle /rootfs/usr/local/bin/waggle \
    && ln -s /usr/local/bin/waggle /rootfs/xray \
    && ln -s /usr/local/bin/waggle /rootfs/usr/bin/xray \
    && chown 65532:65532 /rootfs/var/lib/waggle

# ---- runtime -------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="waggle" \
      org.opencontainers.image.description="Local telemetry relay: OTLP and AWS X-Ray in; Honeycomb, X-Ray, CloudWatch Logs and an embedded store out. A drop-in for amazon/aws-xray-daemon." \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /rootfs/ /
# In a container every listener binds all interfaces, as the X-Ray daemon's image does with
# `-t 0.0.0.0:2000 -b 0.0.0.0:2000`. These are environment variables rather than flags in the
# entrypoint so that `waggle health`, `waggle config` and a compose `command:` all see them;
# compose `environment:` or flags (`-b`, `-t`, `--set`) override them. They also override
# the same keys in a config file given with `-c`.
ENV WAGGLE_RECEIVERS__OTLP_HTTP__ENDPOINT=0.0.0.0:4318 \
    WAGGLE_RECEIVERS__OTLP_GRPC__ENDPOINT=0.0.0.0:4317 \
    WAGGLE_RECEIVERS__XRAY_UDP__ENDPOINT=0.0.0.0:2000 \
    WAGGLE_RECEIVERS__XRAY_TCP__ENDPOINT=0.0.0.0:2000 \
    WAGGLE_ADMIN__ENDPOINT=0.0.0.0:13133 \
    WAGGLE_DATA_DIR=/var/lib/waggle
VOLUME ["/var/lib/waggle"]
EXPOSE 2000/udp 2000/tcp 4317 4318 13133
USER nonroot
# `waggle health` asks the admin endpoint's /healthz (0.0.0.0 is reached on loopback).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/waggle", "health"]
# No CMD: a compose `command:` is appended, so the daemon's `command: xray -o -b host:2000`
# keeps working (waggle ignores a leading `xray` and takes the daemon's flags).
ENTRYPOINT ["/usr/local/bin/waggle"]

# waggle container image: a locked release build, run as a non-root user on a minimal base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin waggle

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/waggle /usr/local/bin/waggle
# In a container every receiver listens on all interfaces, as the X-Ray daemon image does.
ENV WAGGLE_RECEIVERS__OTLP_HTTP__ENDPOINT=0.0.0.0:4318 \
    WAGGLE_RECEIVERS__OTLP_GRPC__ENDPOINT=0.0.0.0:4317 \
    WAGGLE_RECEIVERS__XRAY_UDP__ENDPOINT=0.0.0.0:2000 \
    WAGGLE_ADMIN__ENDPOINT=0.0.0.0:13133 \
    WAGGLE_DATA_DIR=/var/lib/waggle
VOLUME ["/var/lib/waggle"]
EXPOSE 2000/udp 2000/tcp 4317 4318 13133
HEALTHCHECK --interval=10s --timeout=4s --retries=3 CMD ["/usr/local/bin/waggle", "health"]
USER nonroot
ENTRYPOINT ["/usr/local/bin/waggle"]

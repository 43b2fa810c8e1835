# tollgate: one image for both compose services (`proxy` on 4000, `auth-helper` on 4001)
# and for `serve`, which runs the two in one process (the default command).
#
#   docker build -t tollgate .
#   docker run --rm -p 4000:4000 -p 4001:4001 -e TOLLGATE_MASTER_KEY=sk-... tollgate

# --- build --------------------------------------------------------------------------------
# Plain instructions only, so the classic builder and BuildKit both build it.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Stripped: the symbols would triple the binary and the image.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_DEBUG=0
RUN cargo build --release --locked --bin tollgate \
    && install -Dm755 target/release/tollgate /out/tollgate \
    && rm -rf target

# --- run ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to GitHub and the providers. curl: the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 tollgate \
    && useradd --uid 10001 --gid tollgate --home-dir /data --no-create-home --no-log-init \
        --shell /usr/sbin/nologin tollgate \
    && mkdir -p /data /app \
    && chown tollgate:tollgate /data
COPY --from=builder /out/tollgate /usr/local/bin/tollgate

# TOLLGATE_HOST: without it tollgate listens on loopback only until a key is set, which no
# published port reaches inside a container.
ENV TOLLGATE_DATA_DIR=/data \
    TOLLGATE_HOST=0.0.0.0 \
    TOLLGATE_PORT=4000 \
    TOLLGATE_AUTH_PORT=4001
# A config mounted at /app/config.yaml is picked up (./config.yaml is the default path);
# or set TOLLGATE_CONFIG. Without one, every model name goes to GitHub Copilot.
WORKDIR /app
VOLUME ["/data"]
USER tollgate:tollgate
EXPOSE 4000 4001

# Healthy when whichever server this container runs answers: the proxy (serve, proxy)
# or the auth helper (auth-helper).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${TOLLGATE_PORT}/health/liveliness" \
        || curl -fsS -o /dev/null "http://127.0.0.1:${TOLLGATE_AUTH_PORT}/health" \
        || exit 1

ENTRYPOINT ["tollgate"]
CMD ["serve"]

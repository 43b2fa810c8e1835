# rust:1-bookworm, made here: the base above, the C toolchain the official image carries,
# and this machine's own Rust toolchain where the official image keeps it.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config git curl \
    && rm -rf /var/lib/apt/lists/*
COPY rustup/ /usr/local/rustup/
COPY cargo/ /usr/local/cargo/
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN cargo --version && rustc --version

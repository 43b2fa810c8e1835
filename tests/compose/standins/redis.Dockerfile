# redis:7-bookworm, made here from Debian's redis-server. Like the official image, it
# listens on every address without protected mode (the container network is the boundary).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --bind 0.0.0.0 --protected-mode no\n' \
        >/usr/local/bin/redis-server \
    && chmod +x /usr/local/bin/redis-server
EXPOSE 6379
CMD ["redis-server"]

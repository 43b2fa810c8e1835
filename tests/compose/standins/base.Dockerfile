# debian:bookworm-slim, made here: Debian's minbase root filesystem (imported by ../run)
# plus the certificate authorities this machine's outbound TLS is signed with.
FROM tollgate-standin/bookworm-rootfs
COPY ca/ /usr/local/share/ca-certificates/
CMD ["bash"]

# The test suite's GitHub / Copilot stand-in (tollgate-mock --github), built on the host.
FROM debian:bookworm-slim
COPY tollgate-mock /usr/local/bin/tollgate-mock
ENTRYPOINT ["/usr/local/bin/tollgate-mock", "--github"]

# pushman: docker build -t pushman . && docker run -p 1234:1234 -v pushman-data:/var/lib/pushman pushman
# See docs/DEPLOY.md.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pushman-server \
    && strip target/release/pushman

FROM debian:bookworm-slim
# No package needed at run time: the binary links only glibc.
RUN useradd --system --uid 10001 --home-dir /var/lib/pushman --create-home pushman
COPY --from=build /src/target/release/pushman /usr/local/bin/pushman
COPY contrib/docker/pushman.toml /etc/pushman/pushman.toml
USER pushman
WORKDIR /var/lib/pushman
VOLUME /var/lib/pushman
EXPOSE 1234 5678 2121
# `pushman status` asks the running server's HTTP API (/status); non-zero when it does not answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s \
    CMD ["pushman", "status", "--config", "/etc/pushman/pushman.toml"]
# Foreground, logs to stderr (docker logs); SIGTERM drains connections gracefully.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pushman", "--config", "/etc/pushman/pushman.toml"]
CMD ["start"]

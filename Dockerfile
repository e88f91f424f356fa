# The `bozor` binary in an image, for compose.yaml. librdkafka is built from source by
# rdkafka-sys (make and a C compiler, both in the build image).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin bozor

FROM debian:bookworm-slim
COPY --from=build /src/target/release/bozor /usr/local/bin/bozor
ENTRYPOINT ["bozor"]
CMD ["up"]

# Multi-stage build: a static musl binary on a distroless, non-root runtime image.
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The other workspace members (tests/apiserver, tests/fixtures) and the benchmark are dev-only
# and not copied: the image builds from a manifest without them, its lock pruned to match
# (`cargo update --workspace` drops their entries and changes no registry version).
RUN sed -i -e 's|^members = .*|members = ["."]|' -e '/^zk-\(apiserver\|fixtures\) = /d' \
        -e '/^\[\[bench\]\]/,/^harness/d' Cargo.toml \
    && cargo update --workspace
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin zonekeeper

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/zonekeeper /usr/local/bin/zonekeeper
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/zonekeeper"]
CMD ["run"]

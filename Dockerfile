# syntax=docker/dockerfile:1
# Static binary on distroless. Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --locked --profile dist --target "$target" \
 && cp "target/$target/dist/akeyless-csi-provider" /akeyless-csi-provider

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="akeyless-csi-provider" \
      org.opencontainers.image.description="Secrets Store CSI Driver provider for Akeyless" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /akeyless-csi-provider /akeyless-csi-provider
USER 65532:65532
ENTRYPOINT ["/akeyless-csi-provider"]

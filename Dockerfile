# syntax=docker/dockerfile:1
# akeyless-csi-provider: one static (musl) binary on distroless/static, non-root, no shell.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#     -t REGISTRY/akeyless-csi-provider:0.1.0 --push .
#
# Each platform's binary is built natively for that platform (under QEMU when buildx emulates
# it), so the C parts of `ring` need no cross toolchain. `hack/check-static-binary.sh` builds and
# checks the same binary without Docker.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
# distroless static: CA certificates, /etc/passwd with `nonroot` (65532), tzdata; no shell, no libc.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# musl-tools: the C compiler wrapper that ring's build script uses for the musl target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.* \
 && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH
ARG GIT_COMMIT=unknown
WORKDIR /src
COPY . .
# TARGETARCH (set by buildx) picks the musl triple; without buildx, the build machine's.
RUN case "${TARGETARCH:-$(uname -m)}" in \
      amd64|x86_64) triple=x86_64-unknown-linux-musl ;; \
      arm64|aarch64) triple=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported architecture: ${TARGETARCH:-$(uname -m)}" >&2; exit 1 ;; \
    esac \
 && rustup target add "$triple" \
 && AKEYLESS_CSI_GIT_COMMIT="$GIT_COMMIT" \
    RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --profile dist --target "$triple" \
 && cp "target/$triple/dist/akeyless-csi-provider" /akeyless-csi-provider \
 && /akeyless-csi-provider version

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG GIT_COMMIT=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="akeyless-csi-provider" \
      org.opencontainers.image.description="Secrets Store CSI Driver provider for Akeyless" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/akeylesslabs/akeyless-csi-provider" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build --chown=0:0 --chmod=0555 /akeyless-csi-provider /akeyless-csi-provider
# Non-root by default. The Helm chart runs the DaemonSet as uid 0 with every capability dropped,
# only because the node's providers directory is root-owned (see values.yaml).
USER 65532:65532
EXPOSE 8080 8095
ENTRYPOINT ["/akeyless-csi-provider"]
CMD ["serve"]

# syntax=docker/dockerfile:1
# akeyless-csi-provider: one static (musl) binary and its CycloneDX SBOM on an empty base. No
# shell, no package manager, no libc, no CA files (the binary carries the Mozilla roots; extra
# CAs come from --ca-bundle), user 65532.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(git log -1 --format=%cd --date=format:%Y-%m-%dT%H:%M:%SZ --date=utc)" \
#     -t REGISTRY/akeyless-csi-provider:0.1.0 --push .
#
# The build stage runs on the build machine's platform and cross-compiles with hack/dist.sh, the
# script that also builds the image without Docker (hack/image/build.sh, which CI runs and
# tests): the same profile, features, RUSTFLAGS, C toolchain and `cargo auditable`, so both
# paths ship the same binary.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM --platform=$BUILDPLATFORM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
ARG TARGETARCH
WORKDIR /src
# The toolchain in its own cached layer: Rust target, C compiler, cargo-auditable, auditable2cdx.
COPY hack/dist.sh hack/dist.sh
RUN hack/dist.sh tools "$TARGETARCH"
COPY . .
ARG GIT_COMMIT=unknown
RUN AKEYLESS_CSI_GIT_COMMIT="$GIT_COMMIT" DIST_TARGET_DIR=/target hack/dist.sh build "$TARGETARCH" >/tmp/binary \
 && mkdir -p /out/sbom \
 && cp "$(cat /tmp/binary)" /out/akeyless-csi-provider \
 && hack/dist.sh sbom /out/akeyless-csi-provider /out/sbom/akeyless-csi-provider.cdx.json

FROM scratch
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
      org.opencontainers.image.vendor="akeyless-csi-provider authors"
COPY --from=build --chown=0:0 --chmod=0555 /out/akeyless-csi-provider /akeyless-csi-provider
COPY --from=build --chown=0:0 --chmod=0444 /out/sbom/akeyless-csi-provider.cdx.json /sbom/akeyless-csi-provider.cdx.json
# Non-root by default. The Helm chart runs the DaemonSet as uid 0 with every capability dropped,
# only because the node's providers directory is root-owned (see values.yaml).
USER 65532:65532
EXPOSE 8080 8095
ENTRYPOINT ["/akeyless-csi-provider"]
CMD ["serve"]

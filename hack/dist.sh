#!/usr/bin/env bash
# The shipped build, in one place. Everything that builds the binary the image carries goes
# through this script: the Dockerfile, hack/check-static-binary.sh and hack/image/build.sh. So
# every path builds the same binary: same profile, cargo features, RUSTFLAGS, C toolchain, and
# the same `cargo auditable` dependency list embedded in it.
#
# usage: hack/dist.sh tools ARCH          install what `build ARCH` needs (idempotent)
#        hack/dist.sh build ARCH          build; prints the binary's path on stdout
#        hack/dist.sh sbom BINARY OUT     CycloneDX SBOM (JSON) of BINARY from its embedded list
#        hack/dist.sh triple ARCH         the Rust target triple of ARCH
#        hack/dist.sh features            the cargo feature arguments of the shipped build
#        hack/dist.sh profile             the cargo profile of the shipped build
# ARCH: amd64 | arm64 (x86_64 | aarch64 also accepted).
#
# env: DIST_TARGET_DIR   cargo target dir (default ~/.cache/akeyless-csi-provider/target-static)
#      AKEYLESS_CSI_TOOLS_DIR  where pinned tools are installed, by version
#                        (default ~/.cache/akeyless-csi-provider/tools)
#      AKEYLESS_CSI_GIT_COMMIT  the commit `version` prints (default: git rev-parse HEAD)
#
# C toolchain (ring's C and assembly): for the build machine's own architecture, musl-gcc
# (Debian musl-tools); for the other one, Debian's cross gcc (gcc-aarch64-linux-gnu or
# gcc-x86-64-linux-gnu, with the cross libc headers). The Rust musl target links its own musl
# C library and start files in either case, so the result is fully static.
set -euo pipefail

# ---- The shipped build: change these and every path follows. -----------------------------
# Cargo profile (Cargo.toml [profile.dist]).
DIST_PROFILE=dist
# Cargo feature arguments: serving and syncing only. The `tools` feature (demo, bench, the
# emulator subcommand and the emulator crate) never ships.
DIST_FEATURES=(--no-default-features --features sync)
# Tools, pinned; each is installed once per version under $AKEYLESS_CSI_TOOLS_DIR.
CARGO_AUDITABLE_VERSION=0.7.7
AUDITABLE2CDX_VERSION=0.1.0
# ---------------------------------------------------------------------------------------------

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider"
TOOLS="${AKEYLESS_CSI_TOOLS_DIR:-$CACHE/tools}"

die() {
  echo "hack/dist.sh: $*" >&2
  exit 1
}
say() { echo "[dist] $*" >&2; }

triple_of() {
  case "$1" in
    amd64 | x86_64) echo x86_64-unknown-linux-musl ;;
    arm64 | aarch64) echo aarch64-unknown-linux-musl ;;
    *) die "unsupported architecture '$1' (amd64 or arm64)" ;;
  esac
}

# The C compiler for TRIPLE on this machine, and the Debian packages that provide it.
cc_of() {
  local cpu="${1%%-*}"
  if [[ $cpu == "$(uname -m)" ]]; then
    echo "musl-gcc musl-tools"
  elif [[ $cpu == aarch64 ]]; then
    echo "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
  else
    echo "x86_64-linux-gnu-gcc gcc-x86-64-linux-gnu libc6-dev-amd64-cross"
  fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]] \
    || die "missing $*: install them with your distribution's packages (Debian: apt-get install $*)"
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 \
    || {
      apt-get update >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    }
}

# cargo_tool NAME VERSION: installs a crates.io binary once per version; prints its bin dir.
cargo_tool() {
  local name="$1" version="$2" root="$TOOLS/$1-$2"
  if [[ ! -x "$root/bin/$name" ]]; then
    say "cargo install $name $version (once per version, into $root)"
    # A private target dir: never the project's, so an install doesn't disturb its cache.
    CARGO_TARGET_DIR="$root.build" cargo install --quiet --locked --root "$root" \
      --version "=$version" "$name" >&2
    rm -rf "$root.build"
  fi
  echo "$root/bin"
}

tools() {
  local triple cc pkgs
  triple="$(triple_of "$1")"
  if command -v rustup >/dev/null 2>&1 \
    && ! grep -qx "$triple" <<<"$(rustup target list --installed 2>/dev/null)"; then
    rustup target add "$triple" >&2
  fi
  read -r cc pkgs <<<"$(cc_of "$triple")"
  if ! command -v "$cc" >/dev/null 2>&1 || { [[ $cc != musl-gcc ]] \
    && ! echo '#include <string.h>' | "$cc" -E -x c - >/dev/null 2>&1; }; then
    # shellcheck disable=SC2086
    apt_install $pkgs
  fi
  cargo_tool cargo-auditable "$CARGO_AUDITABLE_VERSION" >/dev/null
  cargo_tool auditable2cdx "$AUDITABLE2CDX_VERSION" >/dev/null
}

build() {
  local triple cc cpu upper pkgs
  triple="$(triple_of "$1")"
  tools "$1"
  read -r cc pkgs <<<"$(cc_of "$triple")"
  cpu="${triple%%-*}"
  upper="$(echo "$triple" | tr 'a-z-' 'A-Z_')"
  export CARGO_TARGET_DIR="${DIST_TARGET_DIR:-$CACHE/target-static}"
  export "CC_${triple//-/_}=$cc"
  # The cross gcc drives the link (rustc passes its own musl start files and libc). Natively,
  # rustc's default linker does that; musl-gcc would add its own dynamic-loader specs.
  if [[ $cc != musl-gcc ]]; then
    export "CARGO_TARGET_${upper}_LINKER=$cc"
  fi
  # Static C runtime; no build-machine paths in the binary (panic locations, debug info).
  local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  export RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$ROOT=/src --remap-path-prefix=$cargo_home=/cargo"
  if [[ -z "${AKEYLESS_CSI_GIT_COMMIT:-}" ]]; then
    AKEYLESS_CSI_GIT_COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
  fi
  export AKEYLESS_CSI_GIT_COMMIT
  PATH="$(cargo_tool cargo-auditable "$CARGO_AUDITABLE_VERSION"):$PATH"
  say "cargo auditable build --profile $DIST_PROFILE --target $triple ${DIST_FEATURES[*]} (CC $cc)"
  # Only the provider's binary: building the workspace's other members in the same run would
  # unify their dependencies' features into it.
  (cd "$ROOT" && cargo auditable build --locked --profile "$DIST_PROFILE" --target "$triple" \
    -p akeyless-csi-provider --bin akeyless-csi-provider \
    ${DIST_FEATURES[@]+"${DIST_FEATURES[@]}"} >&2)
  local bin="$CARGO_TARGET_DIR/$triple/$DIST_PROFILE/akeyless-csi-provider"
  [[ -x $bin ]] || die "no binary at $bin"
  [[ $cpu == x86_64 || $cpu == aarch64 ]] || die "unexpected target $triple"
  echo "$bin"
}

sbom() {
  local bin="$1" out="$2" dir
  [[ -x $bin ]] || die "sbom: no binary at $bin"
  dir="$(cargo_tool auditable2cdx "$AUDITABLE2CDX_VERSION")"
  "$dir/auditable2cdx" "$bin" >"$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
}

case "${1:-}" in
  tools) tools "${2:?usage: hack/dist.sh tools ARCH}" ;;
  build) build "${2:?usage: hack/dist.sh build ARCH}" ;;
  sbom) sbom "${2:?usage: hack/dist.sh sbom BINARY OUT}" "${3:?usage: hack/dist.sh sbom BINARY OUT}" ;;
  triple) triple_of "${2:?usage: hack/dist.sh triple ARCH}" ;;
  features) echo "${DIST_FEATURES[*]}" ;;
  profile) echo "$DIST_PROFILE" ;;
  *)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac

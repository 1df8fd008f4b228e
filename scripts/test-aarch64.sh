#!/usr/bin/env bash
# Runs the whole workspace test suite for aarch64-unknown-linux-gnu under
# qemu-user on an x86_64 Debian machine, as DESIGN.md's "Testing AArch64 on
# an x86_64 machine" describes: Debian's Rust (rustc-web) with its arm64
# standard library builds the crates, aarch64-linux-gnu-gcc builds the C
# fixtures and the bundled libffi and links, and qemu-aarch64 runs every test
# binary and doc test against the multiarch arm64 libc (`-L /`; the libc
# under /usr/aarch64-linux-gnu is another version, and mixing the two hangs
# pthread_create under qemu).
#
# Then it runs the differential tests once more with JITCALL_DISABLE_JIT=1,
# so that the baked tier is checked on AArch64 too.
#
# Installs the toolchain and emulator with apt-get when any of it is
# missing. The cross build has its own target directory,
# ${CARGO_TARGET_DIR:-target}/aarch64-qemu, because Debian's rustc is not
# the host build's and sharing a directory would rebuild both every time.
set -euo pipefail
cd "$(dirname "$0")/.."

if (($#)); then
    echo "usage: $0 (takes no arguments)" >&2
    exit 2
fi

readonly TARGET=aarch64-unknown-linux-gnu
readonly PACKAGES=(rustc-web libstd-rust-web-dev:arm64 libc6:arm64 gcc-aarch64-linux-gnu qemu-user)
readonly TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/aarch64-qemu"

# Prints a command, then runs it.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

as_root() {
    if ((EUID == 0)); then
        run "$@"
    else
        run sudo "$@"
    fi
}

installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
if ! command -v cargo >/dev/null 2>&1; then
    # Debian's cargo, matching rustc-web, when no other is on PATH.
    missing+=(cargo-web)
fi
if ((${#missing[@]})); then
    echo "== installing the AArch64 toolchain and emulator: ${missing[*]}"
    as_root dpkg --add-architecture arm64
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
    echo "== AArch64 toolchain and emulator present: ${PACKAGES[*]}"
fi
for tool in /usr/bin/rustc /usr/bin/rustdoc aarch64-linux-gnu-gcc qemu-aarch64 cargo; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is still missing" >&2
        exit 1
    }
done

export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /"
# Tests that start a target binary themselves (the jitcall binary, or the
# test binary again in a child process) start it through the same runner.
export JITCALL_TEST_RUNNER="qemu-aarch64 -L /"
echo "== environment"
for var in RUSTC RUSTDOC CC_aarch64_unknown_linux_gnu \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER; do
    echo "$var=${!var}"
done
run cargo --version
run "$RUSTC" --version
run qemu-aarch64 --version

# Cargo cross-compiles doc tests and runs them through the target's runner
# (rustdoc --test-runtool) since 1.89; older versions leave them out.
cargo_minor=$(cargo --version | sed -E 's/^cargo 1\.([0-9]+)\..*/\1/')
targets=()
if ((cargo_minor < 89)); then
    echo "notice: cargo 1.$cargo_minor does not run cross-compiled doc tests;" \
        "the doc tests are skipped here and run only in the host build"
    targets=(--lib --bins --tests)
fi

echo "== the workspace's tests for $TARGET under qemu-aarch64"
run cargo test --workspace --target "$TARGET" --target-dir "$TARGET_DIR" --no-fail-fast "${targets[@]}"

echo "== the differential tests for $TARGET with JITCALL_DISABLE_JIT=1 (baked tier)"
run env JITCALL_DISABLE_JIT=1 \
    cargo test -p jitcall --target "$TARGET" --target-dir "$TARGET_DIR" --test differential

echo "== AArch64 tests passed in ${SECONDS}s"

#!/usr/bin/env bash
# Runs the suites that execute trampolines under valgrind's memcheck:
# the library's unit tests (every baked stub), the differential, ABI and
# generated suites, the callback tests, the closed-library tests, the
# struct and variadic tests and their generated suite, and
# the memory and stress tests (whose W^X audits say they cannot run there:
# valgrind's own translation cache is writable and executable), and the
# Win64 suite (the generated suites run in Win64 too); and the C API's C
# tests.
#
# --smc-check=all makes valgrind treat every executed page as code that may
# have been written since it was translated, which is what a JIT's pages
# are; --error-exitcode=1 turns any invalid read or write, use of an
# undefined value or bad free into a failure. valgrind runs each test
# binary (cargo's target runner), not cargo or the C compiler.
#
# Installs valgrind with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if (($#)); then
    echo "usage: $0 (takes no arguments)" >&2
    exit 2
fi

# Prints a command, then runs it.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

if ! command -v valgrind >/dev/null 2>&1; then
    echo "== installing valgrind"
    if ((EUID == 0)); then
        run apt-get update -qq
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
    else
        run sudo apt-get update -qq
        run sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
    fi
fi
run valgrind --version

host=$(rustc -vV | sed -n 's/^host: //p')
runner_var="CARGO_TARGET_$(echo "$host" | tr '[:lower:]-' '[:upper:]_')_RUNNER"
export "$runner_var=valgrind --quiet --smc-check=all --error-exitcode=1"
echo "$runner_var=${!runner_var}"
# A fiftieth of the stress test's functions: valgrind runs one thread at a
# time, some 30 times slower, and the point here is memory errors under
# concurrent binding and dropping, not scale.
export JITCALL_STRESS_FUNCTIONS=2000

run cargo test -p jitcall --lib --test differential --test abi --test generated --test close --test callbacks \
    --test structs --test generated_structs --test memory --test stress --test win64
# The C API's C programs, each run under valgrind by the test itself
# (it sees the runner and starts them through it).
run cargo test -p jitcall-capi --test c_api

echo "== valgrind found no errors in ${SECONDS}s"

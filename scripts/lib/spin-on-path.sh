# Sourced by scripts/test and bench/run: puts the Spin CLI that sits beside
# this checkout (../shared/spin/bin, Spin 4.0.2; see its README) on PATH
# when no `spin` is there already, so that the `spin up` half of the tests
# and benchmarks runs on real Spin. A `spin` already on PATH, or SPIN_BIN,
# is left to win. Kiln's users install Spin themselves: nothing is vendored.
shared_spin_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared/spin/bin"
if ! command -v spin >/dev/null && [[ -x $shared_spin_bin/spin ]]; then
  export PATH="$shared_spin_bin:$PATH"
fi
unset shared_spin_bin

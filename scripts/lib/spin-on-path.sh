# Sourced by scripts/test and bench/run: puts the Spin CLI that sits beside
# this checkout (../shared/spin/bin, Spin 4.0.2; see its README) on PATH
# when no Spin is there already, so that the `spin up` half of the tests
# and benchmarks runs on real Spin. A Spin already on PATH, or SPIN_BIN,
# is left to win; a `spin` that is not Spin (Debian's `spin` is a model
# checker) is not. Kiln's users install Spin themselves: nothing is vendored.
is_spin() { "$1" --version 2>/dev/null | grep -q '^spin [0-9]'; }
shared_spin_bin="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)/shared/spin/bin"
if ! is_spin spin && [[ -x $shared_spin_bin/spin ]]; then
  export PATH="$shared_spin_bin:$PATH"
fi
unset shared_spin_bin
# The first call unpacks the shared binary into a cache: once here, not in
# the first tests that start Spin side by side. It also says which is used.
if is_spin "${SPIN_BIN:-spin}"; then
  echo "Spin for the \`spin up\` half: $("${SPIN_BIN:-spin}" --version) ($(command -v "${SPIN_BIN:-spin}"))"
fi

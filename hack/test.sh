#!/usr/bin/env bash
# Runs the tests. With no argument: unit tests, then integration tests on a
# real kube-apiserver + etcd built from source (built first if missing).
# Integration tests never skip here: a missing binary fails the run.
#   hack/test.sh [unit|integration]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local
what=${1:-all}

# Every package except the integration and e2e suites.
unit_pkgs=$(go list ./... | grep -v -e /test/integration/ -e /test/e2e)

if [[ ${what} == all || ${what} == unit ]]; then
  echo "=== unit tests"
  go test -race -count=1 ${unit_pkgs}
fi

if [[ ${what} == all || ${what} == integration ]]; then
  echo "=== integration tests (real kube-apiserver, etcd, kwok)"
  hack/local-cluster/build.sh
  eval "$(hack/local-cluster/env.sh)"
  export AGENT_SANDBOX_INTEGRATION=required
  # -v so the log shows each test running, not skipped.
  go test -race -count=1 -timeout=30m -v ./test/integration/...
fi

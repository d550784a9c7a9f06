#!/usr/bin/env bash
# Runs the e2e suite (build tag e2e) against the cluster KUBECONFIG names,
# with the release manifests deployed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local
if [[ -z ${KUBECONFIG:-} ]]; then
  echo "e2e: set KUBECONFIG to the cluster under test" >&2
  exit 1
fi
go test -tags e2e -count=1 -v ./test/e2e/...

#!/usr/bin/env bash
# Regenerates everything derived from the API types:
#   pkg/apis/**/zz_generated.{deepcopy,register}.go   (deepcopy-gen, register-gen)
#   generated/{clientset,listers,informers}           (client-gen, lister-gen, informer-gen)
#   manifests/crd/*.yaml                              (controller-gen, build-time tool only)
#   docs/api-reference.md                             (hack/apiref, from the types and the CRDs)
#   manifests/helm/agent-sandbox/{crds,files}         (copies of those and of the alert rules)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

MODULE="$(go list -m)"
BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"
LINT_RULES="known-tags-only,require-explicit-disablement"

CODEGEN_PKG="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"
# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

kube::codegen::gen_helpers --boilerplate "${BOILERPLATE}" --lint-rules "${LINT_RULES}" "${ROOT}/pkg/apis"
kube::codegen::gen_register --boilerplate "${BOILERPLATE}" --lint-rules "${LINT_RULES}" "${ROOT}/pkg/apis"
kube::codegen::gen_client \
  --with-watch \
  --lint-rules "${LINT_RULES}" \
  --output-dir "${ROOT}/generated" \
  --output-pkg "${MODULE}/generated" \
  --boilerplate "${BOILERPLATE}" \
  "${ROOT}/pkg/apis"

"${ROOT}/hack/update-crds.sh"
"${ROOT}/hack/update-api-reference.sh"
"${ROOT}/hack/update-helm-chart.sh"

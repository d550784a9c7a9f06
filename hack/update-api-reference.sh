#!/usr/bin/env bash
# Writes docs/api-reference.md from the API types' comments (prose, types)
# and the generated CRDs (required, defaults, validation). Runs after
# update-crds.sh, whose output it reads; make verify diffs the result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

# Link Kubernetes types to the API reference of the minor we build against
# (k8s.io/api v0.X.Y is Kubernetes v1.X).
k8s_minor="$(go list -m -f '{{.Version}}' k8s.io/api | cut -d. -f2)"

# Section order: each group's storage version first.
go run ./hack/apiref \
  -module "$(go list -m)" \
  -k8s-docs-version "v1.${k8s_minor}" \
  -crds manifests/crd \
  -out docs/api-reference.md \
  pkg/apis/agents/v1beta1 pkg/apis/agents/v1alpha1 \
  pkg/apis/extensions/v1beta1 pkg/apis/extensions/v1alpha1

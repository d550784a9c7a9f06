# Thin wrappers over hack/*.sh; the scripts hold the logic.
SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local

.PHONY: all generate verify lint build test test-unit test-integration e2e e2e-local bench chaos soak dev images kind-load release-manifests cluster-build cluster-up cluster-down clean

all: build

## generate: regenerate deepcopy, register, clientset/listers/informers, CRDs and docs/api-reference.md
generate:
	hack/update-codegen.sh

## verify: fail on stale generated code, gofmt, go vet, golangci-lint, go mod tidy, headers; helm lint and the chart's template tests; fuzz the router header and runtime path parsers, the ConversionReview handler, the conversion round trips and the client's positional JSON reads, 10s each (FUZZTIME)
verify:
	hack/verify.sh

## lint: golangci-lint alone (pinned, built from source into TOOLS_CACHE, default _output/tools) with .golangci.yml
lint:
	hack/lint.sh

## build: build every command into bin/
build:
	go build -o bin/ ./cmd/... ./hack/local-cluster

## test: unit tests, then integration tests on a source-built kube-apiserver (never skipped)
test:
	hack/test.sh

## test-unit: unit tests only (no control plane)
test-unit:
	hack/test.sh unit

## test-integration: integration tests only
test-integration:
	hack/test.sh integration

## e2e: kind cluster, images built and loaded, manifests deployed, e2e suite (needs Docker and kind)
e2e:
	hack/e2e-kind.sh

## e2e-local: the same e2e suite on the source-built local cluster, controller under its release RBAC
e2e-local:
	hack/e2e-local.sh

## bench: fresh local cluster, the controller of this checkout, sandbox-bench all; report in _output/bench/ (BENCH_SCALE=small for a smoke run)
bench:
	hack/bench.sh

## chaos: fresh local cluster, claims churned while the controller, its leader, kube-apiserver and etcd are killed; fails on any violation (CHAOS_SCALE=ci|small for shorter runs); report in _output/chaos/
chaos:
	hack/chaos.sh

## soak: fresh local cluster, SOAK_CLAIMS (100000) claims at SOAK_RATE/s against one controller; fails unless RSS, heap and goroutines stay flat; report in _output/soak/
soak:
	hack/soak.sh

## images: build the container image of every binary (IMAGE_PREFIX, IMAGE_TAG; needs Docker)
images:
	IMAGE_PREFIX=$(IMAGE_PREFIX) IMAGE_TAG=$(IMAGE_TAG) hack/images.sh build

## kind-load: load those images into the kind cluster KIND_CLUSTER
kind-load:
	IMAGE_PREFIX=$(IMAGE_PREFIX) IMAGE_TAG=$(IMAGE_TAG) KIND_CLUSTER=$(KIND_CLUSTER) hack/images.sh kind-load

## release-manifests: render manifest.yaml, extensions.yaml, sandbox-router.yaml for VERSION=vX.Y.Z, package the Helm chart (agent-sandbox-X.Y.Z.tgz, index.yaml), build the kubectl-sandbox archives and their krew manifest plugins/sandbox.yaml
release-manifests:
	VERSION=$(VERSION) IMAGE_PREFIX=$(IMAGE_PREFIX) hack/release-manifests.sh

## dev: build and start the local control plane, the controller, the router and a process node (development only: sandboxes run as local processes), claim a sandbox, print how to use it
dev:
	hack/dev.sh

## cluster-build: build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok from source
cluster-build:
	hack/local-cluster/build.sh

## cluster-up: start the local control plane with fake nodes (prints the kubeconfig path)
cluster-up:
	hack/cluster-up.sh

## cluster-down: stop exactly the processes cluster-up and dev started (process node runtimes included)
cluster-down:
	hack/cluster-down.sh

clean:
	rm -rf bin _output

#!/usr/bin/env bash
# Builds the kubectl-sandbox plugin for every release platform into
# reproducible archives and writes the krew manifest that installs them:
#   _output/release/<VERSION>/kubectl-sandbox_<os>_<arch>.tar.gz
#   _output/release/<VERSION>/sandbox.yaml   (krew Plugin, sha256 of each archive)
#   plugins/sandbox.yaml                     (the same; commit it with the release
#                                             tag so the repository is a krew index)
# The manifest is then validated by the krew schema test of cmd/kubectl-sandbox,
# against the archives it names.
# Usage: VERSION=v0.1.0 [PLUGIN_PLATFORMS="linux/amd64 ..."] [OUT=dir] [MANIFEST_COPY=path] hack/release-plugin.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

VERSION=${VERSION:-}
if [[ ! ${VERSION} =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release-plugin: VERSION must be a semantic version such as v0.1.0 (got '${VERSION}')" >&2
  exit 2
fi
PLUGIN_PLATFORMS=${PLUGIN_PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
REPO_URL=${REPO_URL:-https://github.com/agentsandbox/agent-sandbox}
out=${OUT:-_output/release/${VERSION}}
# MANIFEST_COPY="" skips the copy into the tree (a test build).
manifest_copy=${MANIFEST_COPY-plugins/sandbox.yaml}
mkdir -p "${out}"

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's date, not the clock's: two builds of one commit are equal.
build_date=$(git log -1 --format=%cI 2>/dev/null || echo unknown)
pkg=github.com/agentsandbox/agent-sandbox/pkg/version
ldflags="-s -w -X ${pkg}.gitVersion=${VERSION} -X ${pkg}.gitCommit=${commit} -X ${pkg}.buildDate=${build_date}"

manifest="${out}/sandbox.yaml"
cat >"${manifest}" <<EOF
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: sandbox
spec:
  version: ${VERSION}
  homepage: ${REPO_URL}
  shortDescription: Claim agent sandboxes and run commands in them
  description: |
    kubectl sandbox claims agent sandboxes from warm pools (SandboxClaim),
    lists them, runs commands in them and copies files to and from them
    through the sandbox router (which it port-forwards to by itself), and
    suspends, resumes and releases them. See docs/cli.md.
  caveats: |
    The router's shipped auth mode needs a token for the audience
    agent-sandbox-router: pass --router-service-account NAME (the plugin
    mints one) or --router-token.
  platforms:
EOF

for platform in ${PLUGIN_PLATFORMS}; do
  os=${platform%/*}
  arch=${platform#*/}
  bin=kubectl-sandbox
  [[ ${os} == windows ]] && bin=kubectl-sandbox.exe
  stage=$(mktemp -d)
  echo "release-plugin: building ${os}/${arch}" >&2
  CGO_ENABLED=0 GOOS=${os} GOARCH=${arch} go build -trimpath -ldflags "${ldflags}" -o "${stage}/${bin}" ./cmd/kubectl-sandbox
  archive="kubectl-sandbox_${os}_${arch}.tar.gz"
  # Fixed order, owners and times, and gzip without a name or time: the
  # archive, and so its sha256, depends on the binary only.
  tar -C "${stage}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "${bin}" | gzip -n -9 >"${out}/${archive}"
  rm -rf "${stage}"
  sum=$(sha256sum "${out}/${archive}" | cut -d' ' -f1)
  cat >>"${manifest}" <<EOF
  - selector:
      matchLabels:
        os: ${os}
        arch: ${arch}
    uri: ${REPO_URL}/releases/download/${VERSION}/${archive}
    sha256: ${sum}
    bin: ${bin}
    files:
    - from: ${bin}
      to: .
EOF
done

abs() { if [[ $1 == /* ]]; then echo "$1"; else echo "${ROOT}/$1"; fi; }
KREW_MANIFEST="$(abs "${manifest}")" KREW_ARCHIVES="$(abs "${out}")" PLUGIN_PLATFORMS="${PLUGIN_PLATFORMS}" \
  go test -count=1 -run '^TestReleasedKrewManifest$' ./cmd/kubectl-sandbox >&2
if [[ -n ${manifest_copy} ]]; then
  mkdir -p "$(dirname "${manifest_copy}")"
  cp "${manifest}" "${manifest_copy}"
  echo "${manifest_copy}"
fi
echo "${manifest}"

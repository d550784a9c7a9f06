#!/usr/bin/env bash
# make soak: hack/chaos.sh in soak mode (see its knobs).
exec "$(dirname "${BASH_SOURCE[0]}")/chaos.sh" soak "$@"

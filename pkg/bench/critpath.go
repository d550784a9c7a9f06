/*
Copyright The Agent Sandbox Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package bench

import (
	"slices"
	"strconv"
	"sync"
)

// CriticalPathDefinition is how the critical path of a warm claim is
// counted; the report prints it next to the figure.
const CriticalPathDefinition = "writes on the claim, its Sandbox and the Sandbox's Pod committed after the claim's create and up to the claim's Ready " +
	"(distinct resourceVersions seen on the bench's watches, ordered as etcd revisions), median over warm claims"

// writeLog keeps the resourceVersions seen on the watches of the objects
// a claim's critical path can touch: each distinct resourceVersion of an
// object is one write that committed. The watch delivers every change of
// a watched object (a relist may repeat one, never skip a committed one
// it still shows, though it may merge changes it missed), so counting
// versions between two revisions counts the writes committed between
// them. The revisions are etcd's: one counter for every resource of the
// cluster, so a claim's create and its Ready bound the writes on its
// Sandbox and Pod too.
type writeLog struct {
	mu sync.Mutex
	// versions by object kind and name; Pods are logged under the name
	// of the Sandbox controlling them.
	versions map[objectKey][]uint64
	// unordered counts resourceVersions that were not integers: a
	// storage other than etcd3, where the count means nothing.
	unordered int
}

type objectKey struct {
	kind string
	name string
}

// Kinds of the write log.
const (
	logClaim   = "claim"
	logSandbox = "sandbox"
	logPod     = "pod"
)

func newWriteLog() *writeLog { return &writeLog{versions: map[objectKey][]uint64{}} }

// observe records that the object kind/name was seen at rv; a nil log
// records nothing.
func (l *writeLog) observe(kind, name, rv string) {
	if l == nil {
		return
	}
	v, err := strconv.ParseUint(rv, 10, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.unordered++
		return
	}
	k := objectKey{kind, name}
	vs := l.versions[k]
	if i, found := slices.BinarySearch(vs, v); !found {
		l.versions[k] = slices.Insert(vs, i, v)
	}
}

// ClaimPath is the writes on one claim's critical path, by object.
type ClaimPath struct {
	Claim   int `json:"claim"`
	Sandbox int `json:"sandbox"`
	Pod     int `json:"pod"`
}

// Total is the writes on the path.
func (p ClaimPath) Total() int { return p.Claim + p.Sandbox + p.Pod }

// path counts the writes on claim's own objects with a revision in
// (created, ready], the resourceVersions of the claim's create response
// and of its first Ready: the create is the bench's and not on the path,
// the Ready write is. ok is false when the revisions cannot be ordered.
func (l *writeLog) path(claim, sandbox, created, ready string) (ClaimPath, bool) {
	if l == nil {
		return ClaimPath{}, false
	}
	lo, errLo := strconv.ParseUint(created, 10, 64)
	hi, errHi := strconv.ParseUint(ready, 10, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unordered > 0 || errLo != nil || errHi != nil || hi <= lo {
		return ClaimPath{}, false
	}
	count := func(kind, name string) int {
		n := 0
		for _, v := range l.versions[objectKey{kind, name}] {
			if v > lo && v <= hi {
				n++
			}
		}
		return n
	}
	return ClaimPath{Claim: count(logClaim, claim), Sandbox: count(logSandbox, sandbox), Pod: count(logPod, sandbox)}, true
}

// CriticalPath summarises the paths of the warm claims of a run.
type CriticalPath struct {
	// Claims is the warm claims counted.
	Claims int     `json:"claims"`
	P50    float64 `json:"p50"`
	Max    float64 `json:"max"`
	// Mean is the mean total; the means by object add up to it.
	Mean        float64 `json:"mean"`
	ClaimMean   float64 `json:"claimMean"`
	SandboxMean float64 `json:"sandboxMean"`
	PodMean     float64 `json:"podMean"`
}

// SummarizePaths summarises the paths of warm claims; nil without any.
func SummarizePaths(paths []ClaimPath) *CriticalPath {
	if len(paths) == 0 {
		return nil
	}
	totals := make([]float64, len(paths))
	var claim, sandbox, pod float64
	for i, p := range paths {
		totals[i] = float64(p.Total())
		claim += float64(p.Claim)
		sandbox += float64(p.Sandbox)
		pod += float64(p.Pod)
	}
	slices.Sort(totals)
	n := float64(len(paths))
	return &CriticalPath{
		Claims: len(paths), P50: Percentile(totals, 50), Max: totals[len(totals)-1],
		Mean: round3((claim + sandbox + pod) / n), ClaimMean: round3(claim / n), SandboxMean: round3(sandbox / n), PodMean: round3(pod / n),
	}
}

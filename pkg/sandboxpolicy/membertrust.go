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

package sandboxpolicy

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// MemberVerdict is how far a pool may trust a Sandbox that names it as
// controller.
//
// A Sandbox with a controller reference to a warm pool is not necessarily
// the pool's: anyone who can create Sandboxes in the pool's namespace can
// write that reference, the pool's labels and its annotations. What they
// cannot write is the spec the pool's template says (they can copy it, and
// a copy is as good as the pool's own), nor a UID or generation, which the
// API server assigns. MemberVerdict is the judgement built on those facts;
// docs/controllers/sandboxwarmpool.md says what it defends and what not.
type MemberVerdict int

const (
	// MemberRefused is neither shown to be the pool's nor to run its
	// template: never counted, never handed to a claim, never written to.
	MemberRefused MemberVerdict = iota
	// MemberUnverified runs an earlier template and carries the pool's
	// annotation, but this process did not create it (it predates a
	// restart, or is a forgery that asked for this): the pool replaces it,
	// no claim takes it.
	MemberUnverified
	// MemberOwn runs an earlier template and was created by this process,
	// its spec unchanged since: under OnReplenish it is served as before.
	MemberOwn
	// MemberCurrent runs exactly the current template.
	MemberCurrent
)

// JudgeMember decides what sb, controlled by the pool with UID pool, may
// be used for. matches is whether it runs the current template
// (StalenessChecker.Matches, possibly cached); nothing here reads a label.
func JudgeMember(pool types.UID, sb *agentsv1beta1.Sandbox, matches bool, prov *MemberProvenance) MemberVerdict {
	switch {
	case !RunsOwnPod(sb):
		return MemberRefused
	case matches:
		return MemberCurrent
	case prov.CreatedBy(pool, sb):
		return MemberOwn
	case sb.Annotations[agentsv1beta1.WarmPoolMemberAnnotation] == string(pool):
		return MemberUnverified
	}
	return MemberRefused
}

// RunsOwnPod reports whether sb's backing Pod is the one the Sandbox
// controller creates for it, named after it: a pod-name annotation naming
// another Pod would make the Sandbox controller track (and, if it is
// marked adoptable, adopt) a Pod someone else made, whatever the spec says.
func RunsOwnPod(sb *agentsv1beta1.Sandbox) bool {
	name, ok := sb.Annotations[agentsv1beta1.PodNameAnnotation]
	return !ok || name == sb.Name
}

// MemberProvenance remembers the members this process's pool controller
// created (or adopted after checking their spec) and their generation
// then. UID and generation come from the API server, so an entry cannot
// be forged; the record is lost on restart, which is its limit. The pool
// and claim controllers of one process must share one.
type MemberProvenance struct {
	mu      sync.Mutex
	created map[types.UID]memberRecord
	sweep   controller.UIDSweep
}

type memberRecord struct {
	pool       types.UID
	generation int64
}

// NewMemberProvenance returns an empty MemberProvenance.
func NewMemberProvenance() *MemberProvenance {
	return &MemberProvenance{created: map[types.UID]memberRecord{}}
}

// Created records sb, as the API server returned it, as made by pool.
func (p *MemberProvenance) Created(pool types.UID, sb *agentsv1beta1.Sandbox) {
	if p == nil || sb.UID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.created[sb.UID] = memberRecord{pool: pool, generation: sb.Generation}
}

// CreatedBy reports whether pool made sb in this process and its spec has
// not changed since (a spec change bumps the generation).
func (p *MemberProvenance) CreatedBy(pool types.UID, sb *agentsv1beta1.Sandbox) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.created[sb.UID]
	return ok && r.pool == pool && r.generation == sb.Generation
}

// Forget drops a Sandbox that was deleted or left its pool.
func (p *MemberProvenance) Forget(uid types.UID) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.created, uid)
}

// Sweep drops the records of Sandboxes live has rejected on two
// consecutive sweeps (see controller.UIDSweep): members whose delete event, or the
// update that took them out of the pool, was never seen.
func (p *MemberProvenance) Sweep(live func(types.UID) bool) int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return controller.Sweep(&p.sweep, p.created, live)
}

// Len is the number of members remembered.
func (p *MemberProvenance) Len() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.created)
}

// MatchCache remembers StalenessChecker.Matches per Sandbox: the verdict
// changes only with the Sandbox's generation or the template's
// resourceVersion, so a pool pass compares each member's spec once, not
// on every pass. One cache serves one controller, whose checkers all use
// the same SecureDefaults.
type MatchCache struct {
	mu    sync.Mutex
	m     map[types.UID]matchEntry
	sweep controller.UIDSweep
}

type matchEntry struct {
	generation int64
	// The template's UID and resourceVersion the verdict was reached
	// against, kept apart so a hit allocates nothing (a pool's sync asks
	// once per member).
	templateUID types.UID
	templateRV  string
	matches     bool
}

// NewMatchCache returns an empty MatchCache.
func NewMatchCache() *MatchCache { return &MatchCache{m: map[types.UID]matchEntry{}} }

// Matches is s.Matches(sb), from the cache when neither side changed.
func (c *MatchCache) Matches(s *StalenessChecker, sb *agentsv1beta1.Sandbox) bool {
	v, _ := c.Verdict(s, sb)
	return v
}

// Verdict is Matches, and whether the verdict was computed and stored
// now: a caller that must not keep an entry for a Sandbox deleted
// meanwhile needs to check only then.
func (c *MatchCache) Verdict(s *StalenessChecker, sb *agentsv1beta1.Sandbox) (matches, stored bool) {
	c.mu.Lock()
	e, ok := c.m[sb.UID]
	c.mu.Unlock()
	if ok && e.generation == sb.Generation && e.templateUID == s.tmpl.UID && e.templateRV == s.tmpl.ResourceVersion {
		return e.matches, false
	}
	v := s.Matches(sb)
	c.mu.Lock()
	c.m[sb.UID] = matchEntry{generation: sb.Generation, templateUID: s.tmpl.UID, templateRV: s.tmpl.ResourceVersion, matches: v}
	c.mu.Unlock()
	return v, true
}

// Forget drops a deleted Sandbox.
func (c *MatchCache) Forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, uid)
}

// Sweep drops the verdicts of Sandboxes live has rejected on two
// consecutive sweeps (see controller.UIDSweep).
func (c *MatchCache) Sweep(live func(types.UID) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return controller.Sweep(&c.sweep, c.m, live)
}

// Len is the number of verdicts cached.
func (c *MatchCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

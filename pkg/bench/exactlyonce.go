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
	"fmt"
	"slices"
	"sync"
	"time"
)

// Owner identifies the controller of a Sandbox as the watch showed it.
type Owner struct {
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// SandboxObs is one watch observation of a Sandbox.
type SandboxObs struct {
	Name       string
	UID        string
	Controller Owner // zero when unowned
	LaunchType string
	Ready      bool
	Deleted    bool // a delete event, or a deletion timestamp
	Gone       bool // a delete event: the object no longer exists
}

// ClaimObs is one watch observation of a SandboxClaim.
type ClaimObs struct {
	Name    string
	UID     string
	Sandbox string // status.sandbox.name
	Ready   bool
	Deleted bool
	Gone    bool // a delete event: the object no longer exists
}

// Violation is one broken exactly-once rule, with when it was seen.
type Violation struct {
	At     time.Duration `json:"atNs"`
	Rule   string        `json:"rule"`
	Detail string        `json:"detail"`
}

// Rules checked by Checker.
const (
	RuleSandboxMovedBetweenClaims = "sandbox-moved-between-claims"
	RuleClaimSwitchedSandbox      = "claim-switched-sandbox"
	RuleSandboxNamedByTwoClaims   = "sandbox-named-by-two-claims"
	RuleClaimNamesForeignSandbox  = "claim-names-sandbox-it-does-not-control"
	RuleClaimControlsTwoSandboxes = "claim-controls-two-sandboxes"
	RuleLeakedSandbox             = "leaked-sandbox"
	RulePoolOverfilled            = "pool-overfilled"
)

type sandboxState struct {
	obs SandboxObs
	// everClaims are the UIDs of every claim that ever controlled it.
	everClaims []string
	// firstSeen is when the watch first showed it; firstOwner who
	// controlled it then.
	firstSeen  time.Time
	firstOwner Owner
}

type claimState struct {
	obs ClaimObs
	// sandboxes are every status.sandbox.name the claim ever showed.
	sandboxes []string
}

// Checker verifies, from watch events alone, that claims and Sandboxes are
// bound exactly once. It is fed by informer handlers, so it must be safe
// for concurrent use; it keeps the last observation of every object plus
// the history the rules need.
type Checker struct {
	mu        sync.Mutex
	start     time.Time
	claimKind string
	poolKind  string
	sandboxes map[string]*sandboxState
	claims    map[string]*claimState
	// violations is deduplicated by rule and detail so a state that
	// persists over many events is reported once.
	violations []Violation
	seen       map[string]bool
	maxPool    map[string]int
	// replicas are the pools' sizes given by SetPoolReplicas: a pool seen
	// above its size in any state is a violation at once.
	replicas map[string]int
	// forgetGone drops an object's state at its delete event, so a run of
	// unbounded length (chaos, soak) keeps only live objects.
	forgetGone bool
}

// NewChecker returns a Checker whose times are relative to start.
// claimKind and poolKind are the controller kinds of claims and pools.
func NewChecker(start time.Time, claimKind, poolKind string) *Checker {
	return &Checker{
		start: start, claimKind: claimKind, poolKind: poolKind,
		sandboxes: map[string]*sandboxState{}, claims: map[string]*claimState{},
		seen: map[string]bool{}, maxPool: map[string]int{}, replicas: map[string]int{},
	}
}

// ForgetGone makes the Checker drop what it knows of an object at its
// delete event. The rules stay sound: a deleted object never comes back
// under its UID, and a re-created name starts a fresh state anyway. What
// is lost is CreatedBy and Sandbox for objects already gone, which only
// the bounded scenarios read.
func (c *Checker) ForgetGone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetGone = true
}

// SetPoolReplicas declares that pool must never control more than n live
// Sandboxes; from then on every ObservePoolMembers checks it.
func (c *Checker) SetPoolReplicas(pool string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replicas[pool] = n
}

func (c *Checker) violate(at time.Time, rule, format string, args ...any) {
	detail := fmt.Sprintf(format, args...)
	if c.seen[rule+detail] {
		return
	}
	c.seen[rule+detail] = true
	c.violations = append(c.violations, Violation{At: at.Sub(c.start), Rule: rule, Detail: detail})
}

// ObserveSandbox records a Sandbox watch event seen at at.
func (c *Checker) ObserveSandbox(at time.Time, o SandboxObs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.sandboxes[o.Name]
	if !ok || st.obs.UID != o.UID {
		st = &sandboxState{firstSeen: at, firstOwner: o.Controller}
		c.sandboxes[o.Name] = st
	}
	if o.Controller.Kind == c.claimKind && o.Controller.UID != "" {
		// A Sandbox may be handed from the pool to one claim. Once a claim
		// has controlled it, no other claim may ever control it: that
		// would be one sandbox serving two claims.
		if !slices.Contains(st.everClaims, o.Controller.UID) {
			if len(st.everClaims) > 0 {
				c.violate(at, RuleSandboxMovedBetweenClaims, "sandbox %s moved from claim uid %s to claim %s (uid %s)",
					o.Name, st.everClaims[len(st.everClaims)-1], o.Controller.Name, o.Controller.UID)
			}
			st.everClaims = append(st.everClaims, o.Controller.UID)
		}
	}
	st.obs = o
	if o.Deleted {
		// Keep the history (a re-created Sandbox of the same name gets a new
		// UID and a new state) but forget the live view.
		st.obs.Controller = Owner{}
	}
	if o.Gone && c.forgetGone {
		delete(c.sandboxes, o.Name)
	}
}

// ObservePoolMembers records the live Sandboxes pool controls in one
// state the API server held (see poolMembers: the informer events that
// feed ObserveSandbox cannot give consistent counts), tracks the most it
// ever held and reports a pool above its declared replicas.
func (c *Checker) ObservePoolMembers(at time.Time, pool string, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(names)
	c.maxPool[pool] = max(c.maxPool[pool], n)
	want, ok := c.replicas[pool]
	// Reported once per pool and count, with the members of that moment.
	if key := fmt.Sprintf("%s/%s/%d", RulePoolOverfilled, pool, n); ok && n > want && !c.seen[key] {
		c.seen[key] = true
		c.violate(at, RulePoolOverfilled, "pool %s controlled %d sandboxes at once, more than its %d replicas: %v", pool, n, want, names)
	}
}

// ObserveClaim records a SandboxClaim watch event seen at at.
func (c *Checker) ObserveClaim(at time.Time, o ClaimObs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.claims[o.Name]
	if !ok || st.obs.UID != o.UID {
		st = &claimState{}
		c.claims[o.Name] = st
	}
	st.obs = o
	if o.Gone && c.forgetGone {
		delete(c.claims, o.Name)
	}
	if o.Deleted || o.Sandbox == "" {
		return
	}
	if !slices.Contains(st.sandboxes, o.Sandbox) {
		if len(st.sandboxes) > 0 {
			c.violate(at, RuleClaimSwitchedSandbox, "claim %s named sandbox %s, then %s", o.Name, st.sandboxes[len(st.sandboxes)-1], o.Sandbox)
		}
		st.sandboxes = append(st.sandboxes, o.Sandbox)
	}
	for name, other := range c.claims {
		if name != o.Name && !other.obs.Deleted && other.obs.Sandbox == o.Sandbox {
			c.violate(at, RuleSandboxNamedByTwoClaims, "claims %s and %s both name sandbox %s", min(name, o.Name), max(name, o.Name), o.Sandbox)
		}
	}
	// The claim's status and the Sandbox's owner reference arrive on two
	// watches in no fixed order, so a Sandbox still shown as a pool member
	// is not proof of anything; one controlled by another claim is.
	if sb, ok := c.sandboxes[o.Sandbox]; ok && sb.obs.Controller.Kind == c.claimKind && sb.obs.Controller.UID != o.UID {
		c.violate(at, RuleClaimNamesForeignSandbox, "claim %s names sandbox %s, controlled by claim %s", o.Name, o.Sandbox, sb.obs.Controller.Name)
	}
}

// MaxPoolMembers returns the most live Sandboxes pool ever controlled at
// once, as ObservePoolMembers saw it.
func (c *Checker) MaxPoolMembers(pool string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxPool[pool]
}

// CheckPoolBound records a violation if pool ever controlled more than
// want Sandboxes.
func (c *Checker) CheckPoolBound(pool string, want int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.maxPool[pool]; got > want {
		c.violate(time.Now(), RulePoolOverfilled, "pool %s controlled %d sandboxes at once, more than its %d replicas", pool, got, want)
	}
}

// Final checks the settled state: every claim that names a Sandbox controls
// it, no claim controls two Sandboxes, and every live Sandbox is controlled
// by one of pools or by a live claim. sandboxes and claims are a fresh List,
// so the verdict does not depend on watch ordering; they are also recorded.
func (c *Checker) Final(at time.Time, pools []string, sandboxes []SandboxObs, claims []ClaimObs) {
	for _, s := range sandboxes {
		c.ObserveSandbox(at, s)
	}
	for _, cl := range claims {
		c.ObserveClaim(at, cl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	liveClaims := map[string]ClaimObs{}
	for _, cl := range claims {
		if !cl.Deleted {
			liveClaims[cl.UID] = cl
		}
	}
	byName := map[string]SandboxObs{}
	perClaim := map[string][]string{}
	for _, s := range sandboxes {
		byName[s.Name] = s
		if s.Deleted {
			continue
		}
		switch {
		case s.Controller.Kind == c.poolKind && slices.Contains(pools, s.Controller.Name):
		case s.Controller.Kind == c.claimKind && liveClaims[s.Controller.UID].Name != "":
			perClaim[s.Controller.UID] = append(perClaim[s.Controller.UID], s.Name)
		default:
			c.violate(at, RuleLeakedSandbox, "sandbox %s is controlled by neither pool %v nor a live claim (controller %s %s)",
				s.Name, pools, s.Controller.Kind, s.Controller.Name)
		}
	}
	for uid, names := range perClaim {
		if len(names) > 1 {
			slices.Sort(names)
			c.violate(at, RuleClaimControlsTwoSandboxes, "claim %s controls sandboxes %v", liveClaims[uid].Name, names)
		}
	}
	for _, cl := range claims {
		if cl.Deleted || cl.Sandbox == "" {
			continue
		}
		s, ok := byName[cl.Sandbox]
		if !ok || s.Deleted || s.Controller.Kind != c.claimKind || s.Controller.UID != cl.UID {
			c.violate(at, RuleClaimNamesForeignSandbox, "claim %s names sandbox %s, which it does not control", cl.Name, cl.Sandbox)
		}
	}
	// Two live claims naming one Sandbox, in the settled state.
	named := map[string]string{}
	for _, cl := range claims {
		if cl.Deleted || cl.Sandbox == "" {
			continue
		}
		if other, ok := named[cl.Sandbox]; ok {
			c.violate(at, RuleSandboxNamedByTwoClaims, "claims %s and %s both name sandbox %s", min(other, cl.Name), max(other, cl.Name), cl.Sandbox)
		}
		named[cl.Sandbox] = cl.Name
	}
}

// Violations returns every violation seen so far, in order.
func (c *Checker) Violations() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.violations)
}

// SandboxInfo is what the Checker knows about one Sandbox.
type SandboxInfo struct {
	Found      bool
	LaunchType string
	FirstSeen  time.Time
	FirstOwner Owner
}

// Sandbox returns what the watch showed of the Sandbox name.
func (c *Checker) Sandbox(name string) SandboxInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.sandboxes[name]
	if !ok {
		return SandboxInfo{}
	}
	return SandboxInfo{Found: true, LaunchType: st.obs.LaunchType, FirstSeen: st.firstSeen, FirstOwner: st.firstOwner}
}

// PoolStats counts the live Sandboxes pool controls and how many are Ready.
func (c *Checker) PoolStats(pool string) (members, ready int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.sandboxes {
		if !st.obs.Deleted && st.obs.Controller.Kind == c.poolKind && st.obs.Controller.Name == pool {
			members++
			if st.obs.Ready {
				ready++
			}
		}
	}
	return members, ready
}

// CreatedBy counts the Sandboxes first seen after since whose first
// controller had kind: pool members created as refill, or cold Sandboxes
// created for claims.
func (c *Checker) CreatedBy(kind string, since time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, st := range c.sandboxes {
		if st.firstOwner.Kind == kind && !st.firstSeen.Before(since) {
			n++
		}
	}
	return n
}

// Controlled counts the live Sandboxes whose controller has kind.
func (c *Checker) Controlled(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, st := range c.sandboxes {
		if !st.obs.Deleted && st.obs.Controller.Kind == kind {
			n++
		}
	}
	return n
}

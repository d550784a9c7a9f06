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

package sandboxclaim

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// claimState is everything the claim controller remembers in memory, in
// one place, so that one call frees all of a claim's. None of it is needed
// for correctness after a restart (the binding lives in the API); it
// saves writes and steers workers. Bounds:
//
//   - claims, byKey: one entry per claim in the informer cache (at most one
//     per namespace/name: a new UID under a name replaces the old one's).
//     Freed on the claim's delete event (tombstones included), on a sync
//     that finds the claim gone (NotFound: the delete event can be
//     missed), and on a DeletionTimestamp.
//   - reserved (by Sandbox UID): candidates being taken over, at most one
//     per worker plus those whose takeover outcome is unknown. Freed on the
//     member's next event, on its delete event, with its claim, and after
//     reservationTTL.
//   - untrusted (by Sandbox UID): forged bindings already reported. Freed
//     on the Sandbox's delete event, with its claim, and after
//     untrustedTTL (the report then repeats, once per untrustedTTL).
//   - written (controller.WrittenStatus, by claim UID): at most one record
//     per claim, dropped once the cache moves past the write, and with the
//     claim.
//   - matches (sandboxpolicy.MatchCache, by Sandbox UID): one verdict per
//     Sandbox in the informer cache, freed on its delete event.
type claimState struct {
	clock clock.PassiveClock

	mu        sync.Mutex
	claims    map[types.UID]*claimEntry
	byKey     map[cache.ObjectName]types.UID
	reserved  map[types.UID]reservation
	untrusted map[types.UID]untrustedEntry

	written *controller.WrittenStatus
	matches *sandboxpolicy.MatchCache
}

// claimEntry is what is remembered about one claim.
type claimEntry struct {
	key cache.ObjectName
	// firstSeen is when this controller first saw the claim, for the
	// startup latency metric.
	firstSeen time.Time
	// readyCounted: the claim's first Ready was counted.
	readyCounted bool
	// pendingSince is set from just before a takeover or create until the
	// informer shows the claim's Sandbox, so a lagging cache can never lead
	// the claim to a second one. Losing it on restart is safe: a fresh
	// informer lists the binding.
	pendingSince time.Time
	// boundSandbox is the Sandbox this process bound the claim to (or,
	// after a restart, first accepted as its binding): a Sandbox that later
	// names the claim as its controller with another UID is not it.
	boundSandbox types.UID
}

// reservationTTL bounds a reservation. A reservation only steers
// concurrent workers to different candidates (the resourceVersion
// precondition is the guarantee), so it need not outlive the takeover
// write: a write that returned released it or moved the member (whose
// event ends it), and one with an unknown outcome has had this long to
// show up in the informer.
const reservationTTL = 5 * time.Second

// untrustedTTL is how long a reported forged binding stays reported.
const untrustedTTL = time.Hour

// reservation is a candidate a worker is taking over for a claim.
type reservation struct {
	claim types.UID
	// resourceVersion is the member's, which the takeover patch carries:
	// once the informer shows another, the patch has landed or never
	// will.
	resourceVersion string
	expires         time.Time
}

type untrustedEntry struct {
	claim   types.UID
	expires time.Time
}

func newClaimState(clk clock.PassiveClock) *claimState {
	return &claimState{
		clock:     clk,
		claims:    map[types.UID]*claimEntry{},
		byKey:     map[cache.ObjectName]types.UID{},
		reserved:  map[types.UID]reservation{},
		untrusted: map[types.UID]untrustedEntry{},
		written:   controller.NewWrittenStatus(),
		matches:   sandboxpolicy.NewMatchCache(),
	}
}

// entryLocked returns claim's entry, creating it. A claim that took over
// the name of one still remembered means the older one is gone: its state
// goes. s.mu must be held.
func (s *claimState) entryLocked(claim *extv1beta1.SandboxClaim) *claimEntry {
	if e, ok := s.claims[claim.UID]; ok {
		return e
	}
	key := cache.ObjectName{Namespace: claim.Namespace, Name: claim.Name}
	if old, ok := s.byKey[key]; ok {
		s.forgetLocked(old)
	}
	e := &claimEntry{key: key}
	s.claims[claim.UID] = e
	s.byKey[key] = claim.UID
	return e
}

// seen records when the claim was first seen.
func (s *claimState) seen(claim *extv1beta1.SandboxClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entryLocked(claim); e.firstSeen.IsZero() {
		e.firstSeen = s.clock.Now()
	}
}

// countReady marks the claim's first Ready as counted and returns when
// the claim was first seen and whether it had been counted already.
func (s *claimState) countReady(claim *extv1beta1.SandboxClaim) (firstSeen time.Time, counted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(claim)
	firstSeen, counted = e.firstSeen, e.readyCounted
	e.readyCounted = true
	return firstSeen, counted
}

// bindingLag bounds how long a claim waits for the informer to show the
// Sandbox it took; past it, the claim looks again (the Sandbox may have
// been deleted before the informer ever showed it).
const bindingLag = 30 * time.Second

// remember records that claim now has a Sandbox, until the informer shows
// it.
func (s *claimState) remember(claim *extv1beta1.SandboxClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entryLocked(claim).pendingSince = s.clock.Now()
}

// pending reports whether claim took or created a Sandbox the informer
// does not show yet (for at most bindingLag). lapsed reports that it did
// and bindingLag has passed: the Sandbox was deleted before the informer
// showed it, or the informer lags by more than that; only a read from the
// API server tells which (see liveBinding).
func (s *claimState) pending(claim types.UID) (pending, lapsed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.claims[claim]
	if !ok || e.pendingSince.IsZero() {
		return false, false
	}
	if s.clock.Since(e.pendingSince) > bindingLag {
		e.pendingSince = time.Time{}
		return false, true
	}
	return true, false
}

// settled clears the claim's binding marker: the informer shows its
// Sandbox, or its write failed.
func (s *claimState) settled(claim types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.claims[claim]; ok {
		e.pendingSince = time.Time{}
	}
}

// boundTo returns the Sandbox this process accepted as claim's binding.
func (s *claimState) boundTo(claim types.UID) (types.UID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.claims[claim]
	if !ok || e.boundSandbox == "" {
		return "", false
	}
	return e.boundSandbox, true
}

// bind records sb as claim's binding.
func (s *claimState) bind(claim *extv1beta1.SandboxClaim, sb types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entryLocked(claim).boundSandbox = sb
}

// reserve marks sb as being taken over for claim, unless another worker
// has it.
func (s *claimState) reserve(sb *agentsv1beta1.Sandbox, claim types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reservedLocked(sb.UID) {
		return false
	}
	now := s.clock.Now()
	// Sweep, so a reservation whose member is never looked at again
	// still goes.
	for uid, r := range s.reserved {
		if !now.Before(r.expires) {
			delete(s.reserved, uid)
		}
	}
	s.reserved[sb.UID] = reservation{claim: claim, resourceVersion: sb.ResourceVersion, expires: now.Add(reservationTTL)}
	return true
}

// isReserved reports whether a worker is taking sb over.
func (s *claimState) isReserved(sb types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reservedLocked(sb)
}

// reservedLocked is isReserved, dropping an expired reservation. s.mu
// must be held.
func (s *claimState) reservedLocked(sb types.UID) bool {
	r, ok := s.reserved[sb]
	if ok && !s.clock.Now().Before(r.expires) {
		delete(s.reserved, sb)
		return false
	}
	return ok
}

func (s *claimState) release(sb types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reserved, sb)
}

// sandboxChanged ends the reservation of a member the informer shows
// changed: out of its pool (taken, by us or anyone), or at another
// resourceVersion than the takeover patch carries.
func (s *claimState) sandboxChanged(sb *agentsv1beta1.Sandbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reserved[sb.UID]
	if ok && (r.resourceVersion != sb.ResourceVersion || controller.ControllerOfKind(sb, poolGroupKind) == nil) {
		delete(s.reserved, sb.UID)
	}
}

// sandboxGone drops everything keyed by a deleted Sandbox.
func (s *claimState) sandboxGone(sb types.UID) {
	s.mu.Lock()
	delete(s.reserved, sb)
	delete(s.untrusted, sb)
	s.mu.Unlock()
	s.matches.Forget(sb)
}

// firstUntrusted records that sb, naming claim as its controller, was
// reported, and reports whether it had not been (within untrustedTTL).
func (s *claimState) firstUntrusted(claim, sb types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if e, ok := s.untrusted[sb]; ok && now.Before(e.expires) {
		return false
	}
	for uid, e := range s.untrusted {
		if !now.Before(e.expires) {
			delete(s.untrusted, uid)
		}
	}
	s.untrusted[sb] = untrustedEntry{claim: claim, expires: now.Add(untrustedTTL)}
	return true
}

// forget drops all of a claim's state.
func (s *claimState) forget(claim types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(claim)
}

// forgetKey drops all state of the claim last seen under key.
func (s *claimState) forgetKey(key cache.ObjectName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if uid, ok := s.byKey[key]; ok {
		s.forgetLocked(uid)
	}
	delete(s.byKey, key)
}

func (s *claimState) forgetLocked(claim types.UID) {
	if e, ok := s.claims[claim]; ok {
		if s.byKey[e.key] == claim {
			delete(s.byKey, e.key)
		}
		delete(s.claims, claim)
	}
	for uid, r := range s.reserved {
		if r.claim == claim {
			delete(s.reserved, uid)
		}
	}
	for uid, e := range s.untrusted {
		if e.claim == claim {
			delete(s.untrusted, uid)
		}
	}
	s.written.Forget(claim)
}

// StateSize counts what the claim controller holds in memory, by map.
type StateSize struct {
	// Claims is the number of claims with an entry.
	Claims int
	// Reservations are warm candidates being taken over.
	Reservations int
	// Untrusted are forged bindings already reported.
	Untrusted int
	// WrittenStatus are status writes the cache does not show yet.
	WrittenStatus int
	// TemplateVerdicts are cached template comparisons, one per Sandbox
	// checked that is still in the informer cache: not per-claim state.
	TemplateVerdicts int
}

func (s *claimState) size() StateSize {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StateSize{Claims: len(s.claims), Reservations: len(s.reserved), Untrusted: len(s.untrusted), WrittenStatus: s.written.Len(),
		TemplateVerdicts: s.matches.Len()}
}

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

package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Who may resume a suspended, opted-in Sandbox through the router, the
// values of --wake-authz (docs/design/idle.md, "Wake on request").
const (
	// WakeAuthzRBAC asks the ResumeAuthorizer (a SubjectAccessReview for
	// update on that Sandbox). Authorizers without an identity to ask
	// about (allow-all, scoped-token) wake nothing.
	WakeAuthzRBAC = "rbac"
	// WakeAuthzProxy lets whoever may proxy wake the Sandbox.
	WakeAuthzProxy = "proxy"
	// WakeAuthzNone wakes nothing: 409 for every suspended Sandbox.
	WakeAuthzNone = "none"
)

// DefaultWakeTimeout caps how long a request is held for a resume.
const DefaultWakeTimeout = 60 * time.Second

// wakeFieldManager names the router in the Sandbox's managedFields.
const wakeFieldManager = "sandbox-router"

// wakePatchTimeout bounds the resume patch (and its one re-read), which is
// shared by every request in flight and so not tied to any one of them.
const wakePatchTimeout = 10 * time.Second

// Outcomes of a wake, the values of the result label of
// sandbox_router_wakes_total. Each held request counts once.
const (
	wakeResumed = "resumed" // this request's patch resumed the Sandbox
	wakeJoined  = "joined"  // another request, or replica, resumed it
	wakeDenied  = "denied"  // --wake-authz refused the caller
	wakeFailed  = "failed"  // the patch failed, or the hold timed out
)

const (
	msgWakeNeedsUpdate = "Sandbox is suspended; resuming it needs update on sandboxes: "
	msgWakeForbidden   = "Sandbox is suspended and this router may not resume it: "
	msgWakeTimeout     = "Timed out waiting for the sandbox to resume: "
	msgWakeFailed      = "Could not resume the sandbox; retry later."
)

// resumedCacheSize bounds how many resumed suspends a replica remembers:
// more than the Sandboxes it could resume within one --wake-timeout.
const resumedCacheSize = 4096

// resumedKey names one suspend of a Sandbox: its spec generation. The
// resourceVersion would not do: the controller's status writes after a
// suspend (conditions, the Pod going) give the same Suspended spec new
// versions, and a request that saw one of those after the resume patch
// returned would patch a second time.
type resumedKey struct {
	uid        types.UID
	generation int64
}

// errNeedsWake is resolve's answer for a Sandbox that is opted into wake
// on request, not routable, and not being deleted.
var errNeedsWake = &RequestError{Status: http.StatusNotFound, Detail: "wake"}

// errResumedElsewhere says the resume patch found the Sandbox no longer
// Suspended: another replica (or a user) resumed it first.
var errResumedElsewhere = errors.New("resumed by someone else")

// wake handles a request for a Sandbox that resolve found opted in and not
// routable: it authorizes the resume, resumes a suspended Sandbox with one
// patch shared by the requests in flight, and holds the request until the
// cache shows the Sandbox routable, then resolves it into st. An error is
// a *RequestError to answer, or an authorization error for deny. The hold
// is bounded by min(X-Sandbox-Timeout, --proxy-timeout, --wake-timeout);
// st.held is the time it took.
func (r *Router) wake(req *http.Request, st *requestState, grant Constraint) (err error) {
	t := st.target
	info, ok := r.cache.WakeInfo(t.Namespace, t.ID)
	if !ok || !info.OptedIn {
		return &RequestError{Status: http.StatusNotFound, Detail: msgNotFound + t.ID}
	}
	if grant.SandboxUID != "" && grant.SandboxUID != info.UID {
		// A scoped token names the Sandbox it was minted for; it never
		// wakes a later one under the same name.
		return fmt.Errorf("%w: the grant names sandbox UID %s, the sandbox is %s (recreated?)", ErrForbidden, grant.SandboxUID, info.UID)
	}
	result := wakeJoined
	defer func() {
		r.metrics.Wakes.WithLabelValues(result).Inc()
		r.logger.V(2).Info("Wake", "sandbox", klog.KRef(t.Namespace, t.ID), "result", result, "held", st.held)
	}()
	if err := r.authorizeResume(req, t); err != nil {
		result = wakeDenied
		if !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrUnauthenticated) {
			return err // unavailable or failed: deny answers 503 or 500
		}
		r.logger.V(2).Info("Wake refused", "sandbox", klog.KRef(t.Namespace, t.ID), "reason", err.Error())
		if !info.Suspended {
			// Starting, not suspended: what a caller without the right to
			// wake got before wake existed.
			return &RequestError{Status: http.StatusNotFound, Detail: msgNotFound + t.ID}
		}
		return &RequestError{Status: http.StatusConflict, Detail: msgWakeNeedsUpdate + t.ID}
	}

	ctx, cancel := context.WithTimeout(req.Context(), r.holdBound(t))
	defer cancel()
	start := time.Now()
	defer func() { st.held = time.Since(start) }()
	// A Suspended generation this replica already resumed is a cache that
	// has not caught up with the resume yet (requests of the same burst
	// that came after the patch returned): wait for it, do not patch again.
	seen := resumedKey{info.UID, info.Generation}
	if _, done := r.resumed.get(seen); info.Suspended && !done {
		led := false
		perr, ferr := r.resumes.do(ctx, info.UID, func() error {
			if _, done := r.resumed.get(seen); done {
				// A flight that ended between the check above and
				// this one.
				return errResumedElsewhere
			}
			led = true
			err := r.resume(ctx, t.Namespace, t.ID, info)
			if err == nil || errors.Is(err, errResumedElsewhere) {
				// Inside the flight, so that no request finds neither
				// the flight nor this entry. Past --wake-timeout nobody
				// holds for it any more.
				r.resumed.add(seen, struct{}{}, r.opts.WakeTimeout)
			}
			return err
		})
		switch {
		case ferr != nil:
			result = wakeFailed
			return r.holdEnded(req, t)
		case perr == nil && led:
			result = wakeResumed
		case perr == nil, errors.Is(perr, errResumedElsewhere):
		case apierrors.IsForbidden(perr):
			result = wakeFailed
			r.logger.Error(perr, "Cannot resume a sandbox: the router lacks patch on sandboxes (install manifests/components/router-wake-idle)", "sandbox", klog.KRef(t.Namespace, t.ID))
			return &RequestError{Status: http.StatusConflict, Detail: msgWakeForbidden + t.ID}
		case apierrors.IsNotFound(perr):
			result = wakeFailed
			return &RequestError{Status: http.StatusNotFound, Detail: msgNotFound + t.ID}
		default:
			result = wakeFailed
			r.logger.V(2).Info("Resume failed", "sandbox", klog.KRef(t.Namespace, t.ID), "err", perr)
			return &RequestError{Status: http.StatusServiceUnavailable, Detail: msgWakeFailed, retryAfter: true}
		}
	}
	// A Pod-IP hint names the Pod from before the suspend: the resumed
	// Sandbox runs a new one. The hint only ever picks among the resolved
	// Pod's own addresses, so dropping it widens nothing.
	st.target.PodIP = netip.Addr{}
	for {
		changed, done := r.cache.changed(t.Namespace, t.ID)
		rerr := r.resolve(st)
		if rerr != errNeedsWake {
			done()
			if rerr != nil {
				return rerr
			}
			return nil
		}
		select {
		case <-changed:
			done()
		case <-ctx.Done():
			done()
			result = wakeFailed
			return r.holdEnded(req, t)
		}
	}
}

// holdEnded answers a hold whose bound passed: 504, unless the client
// went away first (nobody reads that answer).
func (r *Router) holdEnded(req *http.Request, t Target) error {
	if req.Context().Err() != nil {
		return &RequestError{Status: http.StatusBadGateway, Detail: msgBadGateway + t.ID}
	}
	return &RequestError{Status: http.StatusGatewayTimeout, Detail: msgWakeTimeout + t.ID}
}

// holdBound is the request's own deadline, capped by --wake-timeout.
func (r *Router) holdBound(t Target) time.Duration {
	d := min(r.opts.ProxyTimeout, r.opts.WakeTimeout)
	if t.Timeout > 0 {
		d = min(d, t.Timeout)
	}
	return d
}

// authorizeResume applies --wake-authz to a request whose proxy access was
// already granted.
func (r *Router) authorizeResume(req *http.Request, t Target) error {
	switch r.opts.WakeAuthz {
	case WakeAuthzProxy:
		return nil
	case WakeAuthzRBAC:
		if ra, ok := r.opts.Authorizer.(ResumeAuthorizer); ok {
			return ra.AuthorizeResume(req.Context(), req, t.Namespace, t.ID)
		}
		return fmt.Errorf("%w: the authorization mode has no identity to check update on sandboxes against", ErrForbidden)
	default:
		return fmt.Errorf("%w: --wake-authz=%s", ErrForbidden, r.opts.WakeAuthz)
	}
}

// resume sets spec.operatingMode to Running with a JSON patch that tests
// the UID and the Suspended mode it saw, so that of several replicas (or
// a user) racing, one write is committed and the others fail their test.
// In the same write it records the wake as activity and drops the idle
// marker. A failed test is told apart from a stale cache by one GET: if
// the live Sandbox is still Suspended, the patch is rebuilt from it and
// sent once more. The context is not any one request's: the result is
// shared by all requests in flight for the Sandbox.
func (r *Router) resume(reqCtx context.Context, namespace, name string, info WakeInfo) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), wakePatchTimeout)
	defer cancel()
	sandboxes := r.opts.AgentsClient.AgentsV1beta1().Sandboxes(namespace)
	patch := func(info WakeInfo) error {
		_, err := sandboxes.Patch(ctx, name, types.JSONPatchType, resumePatch(info, time.Now()),
			metav1.PatchOptions{FieldManager: wakeFieldManager})
		return err
	}
	err := patch(info)
	if !apierrors.IsInvalid(err) && !apierrors.IsConflict(err) {
		return err
	}
	live, gerr := sandboxes.Get(ctx, name, metav1.GetOptions{})
	switch {
	case gerr != nil:
		return gerr
	case live.UID != info.UID || live.DeletionTimestamp != nil:
		return apierrors.NewNotFound(agentsv1beta1.SandboxesResource.GroupResource(), name)
	case live.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeSuspended:
		return errResumedElsewhere
	}
	_, idle := live.Annotations[agentsv1beta1.IdleSuspendedAtAnnotation]
	info.IdleSuspended = idle
	if err := patch(info); apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
		return errResumedElsewhere
	} else if err != nil {
		return err
	}
	return nil
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// pointerEscaper escapes a JSON pointer token (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// annotationPath is the JSON pointer of an annotation.
func annotationPath(key string) string {
	return "/metadata/annotations/" + pointerEscaper.Replace(key)
}

// resumePatch is the wake write. The annotations map exists: the Sandbox
// is opted in by one.
func resumePatch(info WakeInfo, now time.Time) []byte {
	ops := []jsonPatchOp{
		{Op: "test", Path: "/metadata/uid", Value: string(info.UID)},
		{Op: "test", Path: "/spec/operatingMode", Value: string(agentsv1beta1.SandboxOperatingModeSuspended)},
		{Op: "replace", Path: "/spec/operatingMode", Value: string(agentsv1beta1.SandboxOperatingModeRunning)},
		{Op: "add", Path: annotationPath(agentsv1beta1.LastActivityAnnotation), Value: agentsv1beta1.FormatActivityTime(now)},
	}
	if info.IdleSuspended {
		ops = append(ops, jsonPatchOp{Op: "remove", Path: annotationPath(agentsv1beta1.IdleSuspendedAtAnnotation)})
	}
	b, _ := json.Marshal(ops) // strings only: always marshals
	return b
}

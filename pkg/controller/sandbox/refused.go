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

package sandbox

import (
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// refusedRequeue is when a Sandbox whose child the API server refused is
// tried again. Nothing this controller watches tells it the cause went
// away (a RuntimeClass created, a ResourceQuota raised or freed by another
// Pod, a PodSecurity label or RBAC changed), and watching all of those,
// cluster-wide, for the rare stuck Sandbox would cost more than it saves;
// a change to the Sandbox itself wakes it at once. One minute bounds how
// long a fixed cause goes unnoticed (as the claim controller waits for a
// missing pool) for one request per stuck Sandbox per minute, refused at
// admission, before etcd. The workqueue's backoff would instead send 13
// requests in the first 20 s and then wait up to 1000 s.
const refusedRequeue = time.Minute

// refusedError is a create the API server refused for what was asked,
// not for its own state: it will refuse it again until something else
// changes, so it is reported (the Ready condition, one Warning Event per
// episode) and tried again after refusedRequeue, not retried with backoff.
type refusedError struct {
	child runtime.Object // the refused object, the Event's related object
	kind  string         // its Kind, e.g. "Pod"
	name  string
	err   error
	// terminating: the namespace is being deleted, so the refusal is
	// final and the Sandbox goes next. kube-controller-manager's
	// ReplicaSet controller reports nothing then; here the Ready
	// condition still says why the child is missing, but no Event is sent
	// (the namespace refuses it too) and nothing is retried (the
	// Sandbox's deletion is the next event).
	terminating bool
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("creating %s %s: %v", strings.ToLower(e.kind), e.name, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

// refusedAsIs tells the create errors that stay until something else
// changes, as kube-controller-manager's ReplicaSet and Job controllers see
// them: Forbidden is admission (an unknown RuntimeClass, an exhausted
// ResourceQuota, PodSecurity, a LimitRange, a terminating namespace) or
// RBAC; Invalid, BadRequest and RequestEntityTooLarge are the object
// itself. Everything else (5xx, timeouts, throttling, conflicts, an
// expired token) may pass on the next try and keeps the rate-limited
// retry.
func refusedAsIs(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// createFailed is the error of a failed create of child (of kind, named
// name). One refused as it is becomes a refusedError, whose Event
// reconcileChildren sends once per episode; any other gets its Event now,
// one per attempt as in kube-controller-manager, and is returned for the
// queue to retry.
func (c *Controller) createFailed(sb *agentsv1beta1.Sandbox, child runtime.Object, kind, name string, err error) error {
	if refusedAsIs(err) {
		return &refusedError{child: child, kind: kind, name: name, err: err,
			terminating: apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)}
	}
	c.failedCreateEvent(sb, child, kind, name, err)
	return fmt.Errorf("creating %s %s: %w", strings.ToLower(kind), name, err)
}

func (c *Controller) failedCreateEvent(sb *agentsv1beta1.Sandbox, child runtime.Object, kind, name string, err error) {
	c.recorder.Eventf(sb, child, corev1.EventTypeWarning, ReasonFailedCreate, "Create", "Failed to create %s %s: %v", kind, name, err)
}

// finalRefusals reports whether every refusal is final (refused in a
// namespace being deleted): then nothing is tried again.
func finalRefusals(refused []*refusedError) bool {
	for _, r := range refused {
		if !r.terminating {
			return false
		}
	}
	return len(refused) > 0
}

// refusals returns the refusedErrors err is made of, and whether it is
// made of nothing else: only then may the sync skip the retry. Only what
// errors.Join put together is looked into, so a refusal wrapped inside some
// other error still counts as that other error, and is retried.
func refusals(err error) (refused []*refusedError, only bool) {
	switch e := err.(type) {
	case nil:
		return nil, false
	case *refusedError:
		return []*refusedError{e}, true
	case interface{ Unwrap() []error }:
		only = true
		for _, part := range e.Unwrap() {
			r, o := refusals(part)
			refused = append(refused, r...)
			only = only && o
		}
		return refused, only
	default:
		return nil, false
	}
}

// namespaceGoing remembers the Sandboxes (key and UID) whose children
// their namespace refused because it is being deleted, once that has been
// written to their status. Every later pass would only be refused again:
// the namespace controller deletes their Pods and Services before them,
// and each deletion, like the status write itself, wakes the Sandbox (a
// namespace of 300 Sandboxes cost 601 refused Pod creates). Deleting a
// namespace cannot be undone and a namespace being deleted admits no new
// Sandbox, so such a Sandbox has nothing left to do but go; its entry
// goes with it (forget). A Sandbox of the same name in a namespace
// recreated later has another UID.
type namespaceGoing struct {
	mu   sync.Mutex
	uids map[string]types.UID
}

func (n *namespaceGoing) mark(key string, uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.uids == nil {
		n.uids = map[string]types.UID{}
	}
	n.uids[key] = uid
}

func (n *namespaceGoing) has(key string, uid types.UID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	u, ok := n.uids[key]
	return ok && u == uid
}

func (n *namespaceGoing) forget(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.uids, key)
}

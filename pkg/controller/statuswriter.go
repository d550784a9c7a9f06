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

package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// StatusWriter is a controller's one way to write the status subresource
// of the objects it reconciles. Every controller here is the only writer of
// its objects' status, so the writes carry no precondition, and the
// writer's job is to send as few as the state allows:
//
//   - nothing when the status computed equals the cached one;
//   - nothing when this writer already sent that status from the same
//     cached resourceVersion (the informer has not shown the write yet; see
//     WrittenStatus);
//   - nothing yet when the controller's hold says the change may wait.
//
// The holds are each controller's policy (docs/performance.md lists them
// with the figures that keep them); the mechanics are here once.
type StatusWriter[S any] struct {
	patch   PatchStatusFunc
	body    func(cached, computed S) (patch []byte, changed bool, err error)
	written *WrittenStatus
}

// PatchStatusFunc sends a JSON merge patch to the status subresource of
// the named object, through the controller's typed client.
type PatchStatusFunc func(ctx context.Context, namespace, name string, patch []byte) error

// StatusHold is a controller's answer to "may this status change wait?".
// The zero value writes now.
type StatusHold struct {
	// For > 0 holds the change this long; the caller requeues for then
	// (Write returns it), so the held change always lands.
	For time.Duration
	// UntilNextWrite holds the change with no deadline: it is not worth a
	// write of its own and goes out with the next change that is.
	UntilNextWrite bool
}

// Holds reports whether the hold keeps the change back.
func (h StatusHold) Holds() bool { return h.For > 0 || h.UntilNextWrite }

// StatusWriteResult is what Write did.
type StatusWriteResult struct {
	// Wrote is true when a patch was sent (a NotFound answer included: the
	// object went away meanwhile, and its next event says so).
	Wrote bool
	// RequeueAfter is the hold's For when a change was held for a time.
	RequeueAfter time.Duration
}

// NewStatusWriter returns the writer of one controller. body builds the
// patch from the cached and the computed status; nil means the JSON merge
// patch of {"status": ...} between the two (MergePatch). written is the
// record of writes the cache does not show yet; nil gives the writer its
// own (a controller that accounts for its per-object memory in one place
// passes the one it holds).
func NewStatusWriter[S any](patch PatchStatusFunc, body func(cached, computed S) ([]byte, bool, error), written *WrittenStatus) *StatusWriter[S] {
	if body == nil {
		body = statusMergePatch[S]
	}
	if written == nil {
		written = NewWrittenStatus()
	}
	return &StatusWriter[S]{patch: patch, body: body, written: written}
}

// statusOnly puts a status under the "status" key, as the subresource's
// patches address it.
type statusOnly[S any] struct {
	Status S `json:"status"`
}

func statusMergePatch[S any](cached, computed S) ([]byte, bool, error) {
	return MergePatch(statusOnly[S]{cached}, statusOnly[S]{computed})
}

// Base is the status a pass computes from and compares with: the one this
// writer last sent while the cache still shows the resourceVersion it was
// computed from (the API server holds it, the cache does not yet), else
// cached. A pass that started from the stale cached status would derive
// again what the written one already has, with new timestamps (a
// condition's lastTransitionTime from the controller's clock, a condition
// set only once), and send a second, different patch: one claim in four
// at 10 claims/s. The result shares memory with the record; callers copy
// it before they change it.
func (w *StatusWriter[S]) Base(obj metav1.Object, cached S) S {
	if last, ok := w.written.Last(obj.GetUID(), obj.GetResourceVersion()); ok {
		if s, ok := last.(S); ok {
			return s
		}
	}
	return cached
}

// Write sends status computed of obj, whose cached status is cached (or
// Base's answer), unless it is equal, already written from this cached
// copy, or held: hold is asked only about a change that would otherwise be
// written.
func (w *StatusWriter[S]) Write(ctx context.Context, obj metav1.Object, cached, computed S, hold func() StatusHold) (StatusWriteResult, error) {
	// The record is consulted first: that is also what drops it once the
	// cache has moved past the write (else it would stay for the object's
	// life).
	if w.written.AlreadyWritten(obj.GetUID(), obj.GetResourceVersion(), computed) || equality.Semantic.DeepEqual(cached, computed) {
		return StatusWriteResult{}, nil
	}
	if hold != nil {
		if h := hold(); h.Holds() {
			return StatusWriteResult{RequeueAfter: h.For}, nil
		}
	}
	patch, changed, err := w.body(cached, computed)
	if err != nil || !changed {
		return StatusWriteResult{}, err
	}
	if logger := klog.FromContext(ctx).V(4); logger.Enabled() {
		// Guarded: the string copy of the patch would be made on every
		// status write of every controller even with -v below 4.
		logger.Info("Writing status", "patch", string(patch))
	}
	err = w.patch(ctx, obj.GetNamespace(), obj.GetName(), patch)
	switch {
	case apierrors.IsNotFound(err):
		// Gone: there is no write to remember, and a record would leak,
		// since the object's delete event (and its Forget) may already
		// have been handled while this pass was in flight.
		return StatusWriteResult{Wrote: true}, nil
	case err != nil:
		return StatusWriteResult{}, err
	}
	w.written.Wrote(obj.GetUID(), obj.GetResourceVersion(), computed)
	return StatusWriteResult{Wrote: true}, nil
}

// Forget drops what the writer remembers of a deleted object: obj is what
// an informer's delete handler gets, a tombstone included.
func (w *StatusWriter[S]) Forget(obj any) {
	obj = DeletedObject(obj)
	if m, ok := obj.(metav1.Object); ok {
		w.written.Forget(m.GetUID())
	}
}

// Pending is the number of objects with a write the cache may not show
// yet (a gauge of the writer's memory, for leak tests).
func (w *StatusWriter[S]) Pending() int { return w.written.Len() }

// FirstStatusHold holds the very first status of a new object while all it
// would say is "starting" (Opts.FirstStatusDelay of the Sandbox and claim
// controllers): the child's Ready event usually comes within the delay and
// its pass writes the one status the object needs, instead of "starting"
// then "ready". Nothing waits past delay after the object's creation, and
// an object that already has a status, or whose news is not "starting"
// (an error, readiness, suspension, expiry), is written at once.
//
// creationTimestamp has whole seconds: the hold ends between delay less a
// second and delay after the object was created.
func FirstStatusHold(obj metav1.Object, hasStatus, starting bool, delay time.Duration, now time.Time) StatusHold {
	if delay <= 0 || hasStatus || !starting {
		return StatusHold{}
	}
	wait := obj.GetCreationTimestamp().Add(delay).Sub(now)
	if wait <= 0 {
		return StatusHold{}
	}
	return StatusHold{For: wait}
}

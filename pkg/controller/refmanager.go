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
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
)

// ClaimResult is what ClaimObject found, and did, for one object.
type ClaimResult int

const (
	// ClaimOwned means the owner controls the object and it still matches.
	ClaimOwned ClaimResult = iota
	// ClaimAdopted means an orphan that matched; the owner controls it now.
	ClaimAdopted
	// ClaimReleased means the owner controlled it, it no longer matches, and
	// the owner's reference is gone (or the object is).
	ClaimReleased
	// ClaimForeign means another controller controls it. Never written.
	ClaimForeign
	// ClaimUnmatched means an orphan that does not match, or lives in another
	// namespace than the owner. Never written.
	ClaimUnmatched
	// ClaimSkipped means the owner would adopt or release it, but the owner is
	// being deleted, or the orphan is (or has gone before the write).
	// Nothing was written; a later sync decides again.
	ClaimSkipped
)

// ChildControl tells a ControllerRefManager how to judge and write one
// kind of child.
type ChildControl struct {
	// Kind names the child's kind in logs and errors ("Pod").
	Kind string
	// Match reports whether the object belongs with the owner: an orphan
	// that matches is adopted, a controlled object that stops matching is
	// released.
	Match func(metav1.Object) bool
	// Patch sends a JSON merge patch to the named child in the owner's
	// namespace. Merge patches, not strategic ones, so custom resources
	// can be claimed the same way.
	Patch func(ctx context.Context, name string, data []byte) error
	// AdoptFields, if set, returns fields to send in the adoption write
	// besides the controller reference: what the owner would write to the
	// child right after adopting it, so adopting costs one write. A
	// "metadata" map is merged with the reference and preconditions.
	AdoptFields func(metav1.Object) (map[string]any, error)
	// ResourceVersion adds the cached resourceVersion to the
	// preconditions of adopt and release. Callers whose decision rests on
	// more than the object's identity (its spec was judged, or the write
	// replaces fields as the cache showed them) set it, so the write lands
	// only on the object as judged.
	ResourceVersion bool
}

// ControllerRefManager applies kube-controller-manager's claim rules for
// one owner during one sync (controller_ref_manager.go):
//
//   - controlled by the owner: kept while it matches, released once it no
//     longer does (unless the owner is being deleted);
//   - controlled by another: ignored;
//   - an orphan that matches, in the owner's namespace, with neither side
//     being deleted: adopted.
//
// Adopt and release are JSON merge patches that rewrite the whole
// ownerReferences list and carry the object's metadata.uid as a
// precondition, so an object deleted and re-created under the same name
// since the cache saw it is never taken or changed by mistake. Before the
// first adoption the manager runs its canAdopt check once (typically
// RecheckDeletionTimestamp: a live read of the owner), so an owner the
// cache still shows but that is being deleted, or was replaced, adopts
// nothing. Build a new manager for every sync.
type ControllerRefManager struct {
	owner    metav1.Object
	ownerGVK schema.GroupVersionKind

	canAdoptFunc func(context.Context) error
	canAdoptOnce sync.Once
	canAdoptErr  error
}

// NewControllerRefManager returns the manager for owner (of kind ownerGVK)
// for one sync. canAdopt, if not nil, runs at most once, before the first
// adoption; its error fails every adoption of this sync.
func NewControllerRefManager(owner metav1.Object, ownerGVK schema.GroupVersionKind, canAdopt func(context.Context) error) *ControllerRefManager {
	return &ControllerRefManager{owner: owner, ownerGVK: ownerGVK, canAdoptFunc: canAdopt}
}

func (m *ControllerRefManager) canAdopt(ctx context.Context) error {
	m.canAdoptOnce.Do(func() {
		if m.canAdoptFunc != nil {
			m.canAdoptErr = m.canAdoptFunc(ctx)
		}
	})
	return m.canAdoptErr
}

// ClaimObject applies the claim rules to obj and performs the adoption or
// release they call for. The error is that of a failed write (NotFound on
// either, and Invalid on release, count as done); the result then says
// what obj still is: ClaimOwned after a failed release, ClaimSkipped after
// a failed adoption.
func (m *ControllerRefManager) ClaimObject(ctx context.Context, obj metav1.Object, ctl ChildControl) (ClaimResult, error) {
	ownerDeleting := m.owner.GetDeletionTimestamp() != nil
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		switch {
		case ref.UID != m.owner.GetUID():
			return ClaimForeign, nil
		case ctl.Match(obj):
			// Keeping what is already ours takes no write, so it holds even
			// while the owner is being deleted.
			return ClaimOwned, nil
		case ownerDeleting:
			return ClaimSkipped, nil
		}
		if err := m.release(ctx, obj, ctl); err != nil {
			return ClaimOwned, err
		}
		return ClaimReleased, nil
	}
	// An owner reference must name an object in the dependent's namespace
	// (or a cluster-scoped one); anything else the garbage collector may
	// take as a missing owner and delete the dependent.
	if ns := m.owner.GetNamespace(); (ns != "" && ns != obj.GetNamespace()) || !ctl.Match(obj) {
		return ClaimUnmatched, nil
	}
	if ownerDeleting || obj.GetDeletionTimestamp() != nil {
		return ClaimSkipped, nil
	}
	return m.adopt(ctx, obj, ctl)
}

// adopt makes the owner obj's controller, after the canAdopt check.
func (m *ControllerRefManager) adopt(ctx context.Context, obj metav1.Object, ctl ChildControl) (ClaimResult, error) {
	if err := m.canAdopt(ctx); err != nil {
		return ClaimSkipped, fmt.Errorf("cannot adopt %s %s: %w", ctl.Kind, obj.GetName(), err)
	}
	fields := map[string]any{}
	if ctl.AdoptFields != nil {
		extra, err := ctl.AdoptFields(obj)
		if err != nil {
			return ClaimSkipped, fmt.Errorf("adopting %s %s: %w", ctl.Kind, obj.GetName(), err)
		}
		maps.Copy(fields, extra)
	}
	// An orphan has no controller, so appending ours cannot make two.
	refs := append(slices.Clone(obj.GetOwnerReferences()), *metav1.NewControllerRef(m.owner, m.ownerGVK))
	patch, err := refPatch(obj, fields, refs, ctl.ResourceVersion)
	if err == nil {
		err = ctl.Patch(ctx, obj.GetName(), patch)
	}
	if apierrors.IsNotFound(err) {
		// Gone since the cache showed it: nothing to adopt.
		return ClaimSkipped, nil
	}
	if err != nil {
		return ClaimSkipped, fmt.Errorf("adopting %s %s: %w", ctl.Kind, obj.GetName(), err)
	}
	klog.FromContext(ctx).V(2).Info("Adopted object", "kind", ctl.Kind, "object", klog.KObj(obj), "owner", klog.KObj(m.owner))
	return ClaimAdopted, nil
}

// release removes the owner's references from obj. NotFound (the object
// is gone) and Invalid (kube-controller-manager's reading: the uid
// precondition failed, so the object was replaced) count as released.
func (m *ControllerRefManager) release(ctx context.Context, obj metav1.Object, ctl ChildControl) error {
	var refs []metav1.OwnerReference
	for _, r := range obj.GetOwnerReferences() {
		if r.UID != m.owner.GetUID() {
			refs = append(refs, r)
		}
	}
	patch, err := refPatch(obj, map[string]any{}, refs, ctl.ResourceVersion)
	if err == nil {
		err = ctl.Patch(ctx, obj.GetName(), patch)
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("releasing %s %s: %w", ctl.Kind, obj.GetName(), err)
	}
	klog.FromContext(ctx).V(2).Info("Released object", "kind", ctl.Kind, "object", klog.KObj(obj), "owner", klog.KObj(m.owner))
	return nil
}

// refPatch is the merge patch that sets obj's ownerReferences to refs
// (null for none) beside fields, with obj's uid and, if asked, its
// resourceVersion as preconditions. fields is the caller's own copy.
func refPatch(obj metav1.Object, fields map[string]any, refs []metav1.OwnerReference, withResourceVersion bool) ([]byte, error) {
	metadata := map[string]any{}
	if m, ok := fields["metadata"].(map[string]any); ok {
		maps.Copy(metadata, m)
	}
	if refs == nil {
		metadata["ownerReferences"] = nil
	} else {
		metadata["ownerReferences"] = refs
	}
	metadata["uid"] = obj.GetUID()
	if withResourceVersion {
		metadata["resourceVersion"] = obj.GetResourceVersion()
	}
	fields["metadata"] = metadata
	return json.Marshal(fields)
}

// RecheckDeletionTimestamp returns a canAdopt check for
// NewControllerRefManager: get reads owner live from the API server, and
// adoption is refused if that fails, if the owner is being deleted, or if
// it was replaced by another object of the same name (a different uid).
// The cache can show an owner for a while after its deletion began; an
// owner that adopts then hands its new children straight to the garbage
// collector.
func RecheckDeletionTimestamp(owner metav1.Object, get func(context.Context) (metav1.Object, error)) func(context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return fmt.Errorf("rechecking %s before adopting: %w", klog.KObj(owner), err)
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("%s was replaced: uid %s, want %s", klog.KObj(owner), fresh.GetUID(), owner.GetUID())
		}
		if ts := fresh.GetDeletionTimestamp(); ts != nil {
			return fmt.Errorf("%s is being deleted (since %s)", klog.KObj(owner), ts.UTC().Format(time.RFC3339))
		}
		return nil
	}
}

// TransferControllerRef returns the JSON merge patch that hands obj from
// its current controller to newOwner in one write: the whole
// ownerReferences list becomes newOwner's controller reference alone, and
// obj's cached resourceVersion is the precondition. Unlike an adoption,
// obj already has a controller, so the uid precondition is not enough:
// the resourceVersion makes the write fail with a conflict if anyone
// changed obj since the caller judged it (another new owner took it
// first), which is what keeps one object from being handed to two owners.
// fields are sent beside it; a "metadata" map is merged with the
// reference and precondition.
func TransferControllerRef(obj, newOwner metav1.Object, newOwnerGVK schema.GroupVersionKind, fields map[string]any) ([]byte, error) {
	patch := maps.Clone(fields)
	if patch == nil {
		patch = map[string]any{}
	}
	metadata := map[string]any{}
	if m, ok := patch["metadata"].(map[string]any); ok {
		maps.Copy(metadata, m)
	}
	metadata["resourceVersion"] = obj.GetResourceVersion()
	metadata["ownerReferences"] = []metav1.OwnerReference{*metav1.NewControllerRef(newOwner, newOwnerGVK)}
	patch["metadata"] = metadata
	return json.Marshal(patch)
}

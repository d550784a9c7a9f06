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
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

const mergePatch = types.MergePatchType

// ownershipError reports a child the Sandbox may not take: owned by
// someone else, or an orphan without consent to adoption. It is permanent
// until someone changes the child, and surfaces as
// Ready=False/ReconcilerError.
type ownershipError struct{ msg string }

func (e *ownershipError) Error() string { return e.msg }

// canAdopt reports whether an unowned child may be taken over: only when
// it says so (the adoptable label) or already carries this Sandbox's name
// hash. Anything else could be an unrelated object that merely has the
// expected name, and adopting it would hand it to the garbage collector.
func canAdopt(sb *agentsv1beta1.Sandbox, child metav1.Object) bool {
	labels := child.GetLabels()
	return labels[agentsv1beta1.AdoptableLabel] == "true" ||
		labels[agentsv1beta1.SandboxNameHashLabel] == agentsv1beta1.NameHash(sb.Name)
}

// refusal is the ownershipError for a child the Sandbox may not take.
func refusal(child metav1.Object, kind string) error {
	kind = strings.ToLower(kind)
	if ref := metav1.GetControllerOfNoCopy(child); ref != nil {
		return &ownershipError{fmt.Sprintf("%s %s is owned by %s %s", kind, child.GetName(), ref.Kind, ref.Name)}
	}
	return &ownershipError{fmt.Sprintf("cannot adopt unowned %s %s: it has neither the %s=true label nor this sandbox's %s label",
		kind, child.GetName(), agentsv1beta1.AdoptableLabel, agentsv1beta1.SandboxNameHashLabel)}
}

// refManager returns the claim rules for sb's children during one sync:
// the first adoption waits for a live read showing sb still there and not
// being deleted, and that read happens at most once per sync.
func (c *Controller) refManager(sb *agentsv1beta1.Sandbox) *controller.ControllerRefManager {
	return controller.NewControllerRefManager(sb, agentsv1beta1.SandboxGroupVersionKind,
		controller.RecheckDeletionTimestamp(sb, func(ctx context.Context) (metav1.Object, error) {
			return c.sandboxes(sb.Namespace).Get(ctx, sb.Name, metav1.GetOptions{})
		}))
}

// claimChild applies the ownership rules to an existing child of sb,
// with ctl's Kind, Patch and adoption fields. A Sandbox's children are
// identified by name (StatefulSet-style), not by a selector: one it
// controls always matches (its labels are repaired, never a reason to let
// it go), and an orphan matches only with consent (canAdopt). The result
// is ClaimOwned, ClaimAdopted or ClaimSkipped (a matching orphan being
// deleted, or gone); a child sb may not take is an ownershipError.
func (c *Controller) claimChild(ctx context.Context, refs *controller.ControllerRefManager, sb *agentsv1beta1.Sandbox,
	child controller.Child, ctl controller.ChildControl) (controller.ClaimResult, error) {
	ctl.Match = func(o metav1.Object) bool { return controller.IsControlledByUID(o, sb) || canAdopt(sb, o) }
	res, err := refs.ClaimObject(ctx, child, ctl)
	switch {
	case err != nil:
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = err
		}
		c.recorder.Eventf(sb, child, corev1.EventTypeWarning, ReasonFailedAdopt, "Adopt", "Failed to adopt %s %s: %v", ctl.Kind, child.GetName(), cause)
		return res, err
	case res == controller.ClaimAdopted:
		c.recorder.Eventf(sb, child, corev1.EventTypeNormal, ReasonAdopted, "Adopt", "Adopted %s %s", ctl.Kind, child.GetName())
	case res == controller.ClaimForeign || res == controller.ClaimUnmatched:
		return res, refusal(child, ctl.Kind)
	}
	return res, nil
}

// patchFunc sends merge patches to one resource of sb's namespace through
// patch (a typed client's Patch), keeping the written object in *written.
func patchFunc[T any](written *T, patch func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)) func(context.Context, string, []byte) error {
	return func(ctx context.Context, name string, data []byte) error {
		out, err := patch(ctx, name, mergePatch, data, metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil && written != nil {
			*written = out
		}
		return err
	}
}

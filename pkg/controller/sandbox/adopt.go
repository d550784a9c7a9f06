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
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

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

// checkOwnership returns nil when child is controlled by sb, adopted=true
// when it is an orphan sb may adopt, and an ownershipError otherwise.
func checkOwnership(sb *agentsv1beta1.Sandbox, child metav1.Object, kind string) (adopt bool, err error) {
	ref := metav1.GetControllerOfNoCopy(child)
	switch {
	case ref == nil && canAdopt(sb, child):
		return true, nil
	case ref == nil:
		return false, &ownershipError{fmt.Sprintf("cannot adopt unowned %s %s: it has neither the %s=true label nor this sandbox's %s label",
			kind, child.GetName(), agentsv1beta1.AdoptableLabel, agentsv1beta1.SandboxNameHashLabel)}
	case ref.UID != sb.UID:
		return false, &ownershipError{fmt.Sprintf("%s %s is owned by %s %s", kind, child.GetName(), ref.Kind, ref.Name)}
	}
	return false, nil
}

// adoptionPatch sets sb as the controller of child, with the child's UID
// as a precondition so a replaced object of the same name is never taken.
func adoptionPatch(sb *agentsv1beta1.Sandbox, child metav1.Object) ([]byte, error) {
	refs := append([]metav1.OwnerReference{}, child.GetOwnerReferences()...)
	refs = append(refs, *metav1.NewControllerRef(sb, agentsv1beta1.SandboxGroupVersionKind))
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":             child.GetUID(),
		"ownerReferences": refs,
	}})
}

// claimChild applies the ownership rules to an existing child without a
// spec to reconcile (a PVC): nothing when owned, adoption when allowed, an
// error otherwise.
func (c *Controller) claimChild(ctx context.Context, sb *agentsv1beta1.Sandbox, child controller.Child, kind string, patch func([]byte) error) error {
	adopt, err := checkOwnership(sb, child, kind)
	if err != nil || !adopt {
		return err
	}
	body, err := adoptionPatch(sb, child)
	if err != nil {
		return err
	}
	if err := patch(body); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		c.recorder.Eventf(sb, child, corev1.EventTypeWarning, ReasonFailedAdopt, "Adopt", "Failed to adopt %s %s: %v", kind, child.GetName(), err)
		return fmt.Errorf("adopting %s %s: %w", kind, child.GetName(), err)
	}
	klog.FromContext(ctx).V(2).Info("Adopted child", "kind", kind, "name", child.GetName())
	c.recorder.Eventf(sb, child, corev1.EventTypeNormal, ReasonAdopted, "Adopt", "Adopted %s %s", kind, child.GetName())
	return nil
}

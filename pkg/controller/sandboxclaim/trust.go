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
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// ReasonUntrustedSandbox is the Event reason when a Sandbox names the claim as its controller but
// is not the one the claim was bound to.
const ReasonUntrustedSandbox = "UntrustedSandbox"

// bindings returns the Sandboxes of the claim's namespace that name the
// claim as their controller: the claim's own, and the others. A
// controller reference is something anyone who can create a Sandbox can
// write (a claim's UID is no secret), so it is the binding only together
// with something else, see trustedBinding.
func (c *Controller) bindings(claim *extv1beta1.SandboxClaim) (own, others []*agentsv1beta1.Sandbox, err error) {
	objs, err := c.sandboxIndexer.ByIndex(controllerUIDIndex, string(claim.UID))
	if err != nil {
		return nil, nil, err
	}
	for _, o := range objs {
		sb := o.(*agentsv1beta1.Sandbox)
		switch {
		case sb.Namespace != claim.Namespace:
		case c.trustedBinding(claim, sb):
			own = append(own, sb)
		default:
			others = append(others, sb)
		}
	}
	return own, others, nil
}

// trustedBinding reports whether sb, which names claim as its controller,
// is the claim's binding. In order:
//   - this process bound the claim: only that very Sandbox (by UID) is;
//   - the claim's status, which only this controller writes, names it;
//   - it runs exactly what the claim would get now: the pool's current
//     template (as a warm member would), or, under the claim's own name,
//     what the cold path would create. A Sandbox identical to that is as
//     good as the claim's own, whoever made it; this is also how a binding
//     made just before a restart, whose status was never written, is found
//     again.
//
// Whatever is accepted is remembered, so a later replacement with another
// UID is refused.
func (c *Controller) trustedBinding(claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox) bool {
	if uid, known := c.state.boundTo(claim.UID); known {
		return uid == sb.UID
	}
	if claim.Status.SandboxStatus.Name != sb.Name && !c.runsWhatItShould(claim, sb) {
		return false
	}
	c.state.bind(claim, sb.UID)
	return true
}

// runsWhatItShould compares sb's spec with what the claim would get.
func (c *Controller) runsWhatItShould(claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox) bool {
	if !sandboxpolicy.RunsOwnPod(sb) {
		return false
	}
	_, tmpl, err := c.poolAndTemplate(claim)
	if err != nil {
		return false
	}
	// A warm binding runs the template and carries exactly the env
	// annotation the claim's takeover writes (none without env), so a
	// Sandbox pre-created with an env of someone's choosing is not it.
	if len(claim.Spec.VolumeClaimTemplates) == 0 && envMatches(claim, tmpl, sb) && c.matches(sandboxpolicy.NewStalenessChecker(tmpl, c.opts.SecureDefaults), sb) {
		return true
	}
	if sb.Name != claim.Name {
		return false
	}
	want, err := buildCold(claim, nil, tmpl, c.opts.SecureDefaults)
	if err != nil {
		return false
	}
	cold := tmpl.DeepCopy()
	cold.Spec.SandboxBlueprint = want.Spec.SandboxBlueprint
	return sandboxpolicy.NewStalenessChecker(cold, c.opts.SecureDefaults).Matches(sb)
}

// reportUntrusted says once per Sandbox (per untrustedTTL) that a
// Sandbox naming the claim as its controller is ignored: an Event on the
// claim and a log line.
func (c *Controller) reportUntrusted(ctx context.Context, claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox) {
	if !c.state.firstUntrusted(claim.UID, sb.UID) {
		return
	}
	klog.FromContext(ctx).Info("Ignoring a Sandbox that names this claim as its controller but is not its binding", "sandbox", klog.KObj(sb))
	if c.opts.DisableEvents {
		return
	}
	c.recorder.Eventf(claim, sb, corev1.EventTypeWarning, ReasonUntrustedSandbox, "Binding",
		"Sandbox %s names this claim as its controller, but the claim did not create or take it and it does not run the claim's template; it is ignored", sb.Name)
}

// liveBinding reads from the API server, not the cache, the Sandbox the
// claim is bound to, if there is one: those labelled with the claim's UID
// (both paths write the label with the binding) and the one its status
// names, accepted by the same rules as the cache's (trustedBinding). It
// runs only when the claim had a Sandbox that the cache does not show, so
// it costs a read or two per lagging claim per bindingLag, and none on the
// claim path. Found by sandbox-bench chaos: a Sandbox watch lagging the
// claim's own create by more than bindingLag led the claim to take a warm
// member as well.
func (c *Controller) liveBinding(ctx context.Context, claim *extv1beta1.SandboxClaim) (*agentsv1beta1.Sandbox, error) {
	sandboxes := c.client.AgentsV1beta1().Sandboxes(claim.Namespace)
	list, err := sandboxes.List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{agentsv1beta1.SandboxIDLabel: string(claim.UID)}.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the claim's sandboxes: %w", err)
	}
	found := list.Items
	if name := claim.Status.SandboxStatus.Name; name != "" &&
		!slices.ContainsFunc(found, func(sb agentsv1beta1.Sandbox) bool { return sb.Name == name }) {
		// The label is the user's to remove; the status is ours.
		sb, err := sandboxes.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			found = append(found, *sb)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading sandbox %s: %w", name, err)
		}
	}
	for i := range found {
		sb := &found[i]
		if ref := controller.ControllerOfKind(sb, claimGroupKind); ref == nil || ref.UID != claim.UID {
			continue
		}
		if c.trustedBinding(claim, sb) {
			return sb, nil
		}
	}
	return nil, nil
}

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
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// syncMetadata carries later edits of the claim's additionalPodMetadata
// (and of the template's pod metadata) to its bound Sandbox, whose
// controller then relabels the Pod in place, without a restart. One merge
// patch, only when something differs.
func (c *Controller) syncMetadata(ctx context.Context, claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox) (*agentsv1beta1.Sandbox, error) {
	_, tmpl, err := c.poolAndTemplate(claim)
	if err != nil {
		if len(claim.Spec.AdditionalPodMetadata.Labels)+len(claim.Spec.AdditionalPodMetadata.Annotations) == 0 {
			// Nothing of the claim's to apply; the binding stands alone.
			return sb, nil
		}
		return sb, err
	}
	if err := validateMetadata(claim, c.opts.AllowedLabelDomains); err != nil {
		return sb, err
	}
	want, err := podMetadata(claim, tmpl)
	if err != nil {
		return sb, err
	}
	have := sb.Spec.PodTemplate.ObjectMeta
	if sameKeys(have.Labels, want.Labels) && sameKeys(have.Annotations, want.Annotations) {
		return sb, nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"podTemplate": map[string]any{"metadata": map[string]any{
		"labels":      replaceMap(have.Labels, want.Labels),
		"annotations": replaceMap(have.Annotations, want.Annotations),
	}}}})
	if err != nil {
		return sb, err
	}
	updated, err := c.client.AgentsV1beta1().Sandboxes(sb.Namespace).Patch(ctx, sb.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return sb, nil
	}
	if err != nil {
		return sb, fmt.Errorf("updating sandbox %s pod metadata: %w", sb.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Updated the bound Sandbox's pod metadata", "sandbox", klog.KObj(sb))
	return updated, nil
}

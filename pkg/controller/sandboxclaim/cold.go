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
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// createCold creates the claim's Sandbox from the pool's template, named
// after the claim (so a retry after a lost response finds it instead of
// creating a second), with the claim's volume claim templates and
// environment merged in as the template's policies allow. cold is why the
// claim itself could not be served warm (warmEnv), "" when the pool simply
// had no member: only the former gets a ColdStart Event.
func (c *Controller) createCold(ctx context.Context, claim *extv1beta1.SandboxClaim, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate,
	cold string) (*agentsv1beta1.Sandbox, error) {
	sb, err := buildCold(claim, pool, tmpl, c.opts.SecureDefaults)
	if err != nil {
		return nil, err
	}
	if v := c.traces.annotation(ctx, claim); v != "" {
		sb.Annotations[agentsv1beta1.TraceContextAnnotation] = v
	}
	c.state.remember(claim)
	created, err := c.client.AgentsV1beta1().Sandboxes(claim.Namespace).Create(ctx, sb, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		// Ours from an earlier pass whose response was lost, or someone
		// else's: the next sync tells them apart once the cache has it.
		return nil, claimErrorf(extv1beta1.ClaimReasonSandboxCreatePending, "sandbox %s already exists; waiting for the cache", claim.Name)
	}
	if err != nil {
		c.state.settled(claim.UID)
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil, errNamespaceTerminating
		}
		if apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) || tooLargeToStore(err) {
			// What the template and the claim make together is refused
			// as it is: retrying cannot help until one of them changes.
			return nil, claimErrorf(extv1beta1.ClaimReasonReconcilerError, "creating sandbox: %v", err)
		}
		return nil, fmt.Errorf("creating sandbox: %w", err)
	}
	c.state.bind(claim, created.UID)
	c.traces.event(ctx, eventSandboxCreated, created)
	klog.FromContext(ctx).V(2).Info("Created Sandbox", "sandbox", klog.KObj(created))
	c.event(claim, created, ReasonSandboxProvisioned, "Provisioning", "Created Sandbox %s from template %s", created.Name, tmpl.Name)
	if cold != "" {
		c.event(claim, created, extv1beta1.ClaimEventColdStart, "Provisioning", "%s: %s", cold, coldMessages[cold])
	}
	c.opts.ClaimMetrics.bound(claim, created, agentsv1beta1.LaunchTypeCold, tmpl.Name)
	return created, nil
}

// errNamespaceTerminating is a cold create refused because the namespace
// is being deleted (its Sandboxes may go before its claims): the claim
// goes with it, so sync neither reports it (the namespace refuses Events
// too) nor retries, as the pool controller and kube-controller-manager's
// ReplicaSet controller do.
var errNamespaceTerminating = errors.New("the namespace is being deleted")

// tooLargeToStore tells etcd's refusal of an object for its size from a
// transient server error. The API server passes etcd's refusal on as a
// bare 500 whose reason is empty and whose message is etcd's (kube-apiserver
// v1.36: etcd3 store errors it does not map become InternalServerError
// with the error text), so the message is all there is to go by. Both
// texts are the ones kube-apiserver itself matches (isTooLargeError in
// k8s.io/apiserver endpoints/handlers) to retry a write without
// managedFields: etcd's ErrGRPCRequestTooLarge ("etcdserver: request is too
// large", over --max-request-bytes) and the gRPC client's send limit.
//
// The object is not refused up front by its own size: the limit is
// etcd's flag (1.5 MiB by default, raised by some operators), what is
// stored (managedFields, the conversion annotations) is not what we send,
// so any threshold here would refuse claims a cluster accepts or accept
// ones it refuses. Asking costs one refused request per claim change.
func tooLargeToStore(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != http.StatusInternalServerError {
		return false
	}
	msg := status.Status().Message
	return strings.Contains(msg, "etcdserver: request is too large") || strings.Contains(msg, "trying to send message larger than max")
}

// buildCold is the Sandbox the cold path creates for claim: deterministic,
// so a Sandbox found later can be checked against it. pool (nil when only
// the spec matters) contributes the wake and idle knobs, with the
// template's. No last-activity: until the first request, the Sandbox
// controller counts the idle window from the Ready transition, which for a
// new Sandbox is the right start.
func buildCold(claim *extv1beta1.SandboxClaim, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, defaults sandboxpolicy.SecureDefaults) (*agentsv1beta1.Sandbox, error) {
	podMeta, err := podMetadata(claim, tmpl)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		agentsv1beta1.SandboxIDLabel:              string(claim.UID),
		agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeCold,
		agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
	}
	if v, ok := claim.Labels[agentsv1beta1.CreatedByLabel]; ok {
		labels[agentsv1beta1.CreatedByLabel] = v
	}
	annotations := map[string]string{agentsv1beta1.SandboxTemplateRefAnnotation: tmpl.Name}
	if v, ok := claim.Annotations[agentsv1beta1.TraceContextAnnotation]; ok {
		annotations[agentsv1beta1.TraceContextAnnotation] = v
	}
	for k, v := range knobs(pool, tmpl) {
		annotations[k] = v
	}
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			Name:            claim.Name,
			Namespace:       claim.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
	}
	sb.Spec.PodTemplate.ObjectMeta = podMeta
	if sb.Spec.VolumeClaimTemplates, err = mergeVolumeClaimTemplates(tmpl, claim); err != nil {
		return nil, err
	}
	if err := injectEnv(tmpl, claim, &sb.Spec.PodTemplate.Spec); err != nil {
		return nil, err
	}
	defaults.Apply(tmpl, &sb.Spec.PodTemplate.Spec)
	return sb, nil
}

// podMetadata is the pod template metadata of the claim's Sandbox: the
// template's and additionalPodMetadata, which may add keys but never
// contradict the template. The claim's identity (claim-uid, created-by,
// template-ref-hash) is on the Sandbox's own labels, where the Sandbox
// controller reads it for the Pod; reserved keys in the pod template never
// reach the Pod. Keeping them out of the pod template means a warm
// takeover by a claim without additionalPodMetadata changes no spec, so the
// Sandbox's generation, and with it its status, stays as it was: one write
// fewer per warm claim (docs/compatibility.md).
func podMetadata(claim *extv1beta1.SandboxClaim, tmpl *extv1beta1.SandboxTemplate) (agentsv1beta1.PodMetadata, error) {
	src := tmpl.Spec.PodTemplate.ObjectMeta
	out := agentsv1beta1.PodMetadata{Labels: map[string]string{}, Annotations: map[string]string{}}
	for k, v := range src.Labels {
		out.Labels[k] = v
	}
	for k, v := range src.Annotations {
		out.Annotations[k] = v
	}
	var conflicts []string
	merge := func(dst, add map[string]string, kind string) {
		for k, v := range add {
			if have, ok := dst[k]; ok && have != v {
				conflicts = append(conflicts, fmt.Sprintf("%s %s=%q (template has %q)", kind, k, v, have))
				continue
			}
			dst[k] = v
		}
	}
	merge(out.Labels, claim.Spec.AdditionalPodMetadata.Labels, "label")
	merge(out.Annotations, claim.Spec.AdditionalPodMetadata.Annotations, "annotation")
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return out, claimErrorf(extv1beta1.ClaimReasonReconcilerError, "metadata override conflict: %s", strings.Join(conflicts, ", "))
	}
	if len(out.Labels) == 0 {
		out.Labels = nil
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	return out, nil
}

// reservedAnnotationDomains may not be set through additionalPodMetadata
// (nor their subdomains), except the autoscaler's eviction hint.
var reservedAnnotationDomains = []string{"kubernetes.io", "k8s.io", "agents.x-k8s.io"}

// validateMetadata refuses additionalPodMetadata a tenant may not set:
// label keys must be prefixed with an allowed domain, so every reserved
// prefix is refused; annotations may not use the Kubernetes or
// agent-sandbox domains.
func validateMetadata(claim *extv1beta1.SandboxClaim, allowedLabelDomains []string) error {
	var problems []string
	for k, v := range claim.Spec.AdditionalPodMetadata.Labels {
		switch {
		case len(validation.IsQualifiedName(k)) > 0:
			problems = append(problems, fmt.Sprintf("label key %q is not a qualified name", k))
		case !keyInDomains(k, allowedLabelDomains):
			problems = append(problems, fmt.Sprintf("label key %q must be prefixed with one of the allowed domains %v", k, allowedLabelDomains))
		case len(validation.IsValidLabelValue(v)) > 0:
			problems = append(problems, fmt.Sprintf("label %s has an invalid value %q", k, v))
		case strings.EqualFold(k, "app") && strings.EqualFold(v, "sandbox-router"):
			problems = append(problems, "label app=sandbox-router is reserved for the router")
		}
	}
	for k := range claim.Spec.AdditionalPodMetadata.Annotations {
		switch {
		case len(validation.IsQualifiedName(k)) > 0:
			problems = append(problems, fmt.Sprintf("annotation key %q is not a qualified name", k))
		case k == agentsv1beta1.SafeToEvictAnnotation:
		case keyInDomains(k, reservedAnnotationDomains):
			problems = append(problems, fmt.Sprintf("annotation key %q uses a reserved domain", k))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return claimErrorf(extv1beta1.ClaimReasonInvalidMetadata, "invalid additionalPodMetadata: %s", strings.Join(problems, "; "))
	}
	return nil
}

// keyInDomains reports whether a label or annotation key has a prefix
// (the part before its "/") that is one of domains or a subdomain of one.
func keyInDomains(key string, domains []string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	prefix = strings.ToLower(prefix)
	for _, d := range domains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

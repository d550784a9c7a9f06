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
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// serviceState is what status and the Ready condition need to know about
// the Service.
type serviceState struct {
	// required: spec.service is true, or unset while an owned Service
	// exists (kept for backward compatibility).
	required bool
	exists   bool
}

// reconcileService manages the headless Service by the tri-state
// spec.service: true creates (or adopts) and keeps it, false deletes an
// owned one, unset never creates one but keeps and repairs one it owns.
func (c *Controller) reconcileService(ctx context.Context, refs *controller.ControllerRefManager, sb *agentsv1beta1.Sandbox) (serviceState, error) {
	want := sb.Spec.Service
	svc, err := c.serviceLister.Services(sb.Namespace).Get(sb.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return serviceState{required: want != nil && *want}, err
	}
	if apierrors.IsNotFound(err) {
		svc, err = nil, nil
	}
	state := serviceState{}
	switch {
	case want != nil && !*want: // false: remove ours, ignore anything else
		if svc != nil && controller.IsControlledByUID(svc, sb) {
			if err := c.deleteService(ctx, sb, svc); err != nil {
				return state, err
			}
		}
	case want != nil: // true
		state.required = true
		state.exists, err = c.ensureService(ctx, refs, sb, svc)
	default: // unset
		if svc != nil && controller.IsControlledByUID(svc, sb) {
			state.required, state.exists = true, true
			err = c.repairService(ctx, sb, svc, false)
		} else if svc != nil && metav1.GetControllerOfNoCopy(svc) != nil {
			err = refusal(svc, "Service")
		}
	}
	sb.Status.Service, sb.Status.ServiceFQDN = "", ""
	if state.exists {
		sb.Status.Service = sb.Name
		sb.Status.ServiceFQDN = fmt.Sprintf("%s.%s.svc.%s", sb.Name, sb.Namespace, c.opts.ClusterDomain)
	}
	return state, err
}

func (c *Controller) ensureService(ctx context.Context, refs *controller.ControllerRefManager, sb *agentsv1beta1.Sandbox, svc *corev1.Service) (bool, error) {
	if svc == nil {
		desired := desiredService(sb)
		_, err := c.kube.CoreV1().Services(sb.Namespace).Create(ctx, desired, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("service %s already exists; waiting for the cache", sb.Name)
		}
		if err != nil {
			return false, c.createFailed(sb, desired, "Service", sb.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Created Service", "service", klog.KRef(sb.Namespace, sb.Name))
		c.recorder.Eventf(sb, desired, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Create", "Created Service %s", sb.Name)
		return true, nil
	}
	if metav1.GetControllerOfNoCopy(svc) == nil && canAdopt(sb, svc) &&
		svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		// clusterIP is immutable: a non-headless Service can never become
		// ours.
		return false, &ownershipError{fmt.Sprintf("cannot adopt service %s: it is not headless (clusterIP %s)", svc.Name, svc.Spec.ClusterIP)}
	}
	res, err := c.claimChild(ctx, refs, sb, svc, controller.ChildControl{
		Kind:  "Service",
		Patch: patchFunc[*corev1.Service](nil, c.kube.CoreV1().Services(sb.Namespace).Patch),
		AdoptFields: func(metav1.Object) (map[string]any, error) {
			return serviceAdoptFields(sb, svc), nil
		},
		// The write replaces selector and ports as the cache showed them.
		ResourceVersion: true,
	})
	switch {
	case err != nil:
		return false, err
	case res == controller.ClaimOwned:
		return true, c.repairService(ctx, sb, svc, true)
	}
	return res == controller.ClaimAdopted, nil
}

// serviceAdoptFields is what adopting svc writes besides the controller
// reference: the Sandbox's tracking label, selector and ports.
func serviceAdoptFields(sb *agentsv1beta1.Sandbox, svc *corev1.Service) map[string]any {
	desired := desiredService(sb)
	hash := desired.Labels[agentsv1beta1.SandboxNameHashLabel]
	spec := map[string]any{
		"selector": replaceMap(svc.Spec.Selector, desired.Spec.Selector),
		"ports":    desired.Spec.Ports,
	}
	if len(svc.Spec.Selector) == 0 && svc.Spec.IPFamilyPolicy != nil &&
		*svc.Spec.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack && len(svc.Spec.IPFamilies) > 1 {
		// The API server defaults a headless Service without a selector to
		// RequireDualStack; with a selector that is invalid on a
		// single-stack cluster. Keep the primary family only; the server
		// allows that just with SingleStack.
		spec["ipFamilyPolicy"] = corev1.IPFamilyPolicySingleStack
		spec["ipFamilies"] = svc.Spec.IPFamilies[:1]
	}
	return map[string]any{
		"metadata": map[string]any{"labels": map[string]string{agentsv1beta1.SandboxNameHashLabel: hash}},
		"spec":     spec,
	}
}

// replaceMap is the merge-patch value that turns have into want.
func replaceMap(have, want map[string]string) map[string]any {
	out := map[string]any{}
	for k := range have {
		out[k] = nil
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// repairService restores the selector and tracking label of an owned
// Service, and its ports when spec.service is true. Ports are compared on
// the fields we set only, so extra fields such as appProtocol survive.
func (c *Controller) repairService(ctx context.Context, sb *agentsv1beta1.Sandbox, svc *corev1.Service, withPorts bool) error {
	desired := desiredService(sb)
	var patch []string
	body := map[string]any{}
	hash := desired.Labels[agentsv1beta1.SandboxNameHashLabel]
	if svc.Labels[agentsv1beta1.SandboxNameHashLabel] != hash {
		body["metadata"] = map[string]any{"labels": map[string]string{agentsv1beta1.SandboxNameHashLabel: hash}}
		patch = append(patch, "label")
	}
	spec := map[string]any{}
	if !maps.Equal(svc.Spec.Selector, desired.Spec.Selector) {
		spec["selector"] = replaceMap(svc.Spec.Selector, desired.Spec.Selector)
		patch = append(patch, "selector")
	}
	if withPorts && !portsMatch(svc.Spec.Ports, desired.Spec.Ports) {
		spec["ports"] = desired.Spec.Ports
		patch = append(patch, "ports")
	}
	if len(patch) == 0 {
		return nil
	}
	if len(spec) > 0 {
		body["spec"] = spec
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if _, err := c.kube.CoreV1().Services(sb.Namespace).Patch(ctx, svc.Name, mergePatch, raw, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("repairing service %s: %w", svc.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Repaired Service", "service", klog.KObj(svc), "fields", patch)
	return nil
}

func (c *Controller) deleteService(ctx context.Context, sb *agentsv1beta1.Sandbox, svc *corev1.Service) error {
	return controller.DeleteChild(ctx, c.recorder, sb, svc, "Service", "", c.kube.CoreV1().Services(svc.Namespace).Delete)
}

func desiredService(sb *agentsv1beta1.Sandbox) *corev1.Service {
	hash := agentsv1beta1.NameHash(sb.Name)
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:            sb.Name,
			Namespace:       sb.Namespace,
			Labels:          map[string]string{agentsv1beta1.SandboxNameHashLabel: hash},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sb, agentsv1beta1.SandboxGroupVersionKind)},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{agentsv1beta1.SandboxNameHashLabel: hash},
			Ports:     ServicePorts(&sb.Spec.PodTemplate.Spec),
		},
	}
}

// ServicePorts derives the headless Service's ports from the containers and
// native sidecars: one per distinct (port, protocol), sorted, the first
// explicit name winning and generated names ("p-8080-tcp") never colliding.
func ServicePorts(spec *corev1.PodSpec) []corev1.ServicePort {
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	var order []portKey
	names := map[portKey]string{}
	seen := map[portKey]bool{}
	taken := map[string]bool{}
	collect := func(containers []corev1.Container) {
		for i := range containers {
			for _, p := range containers[i].Ports {
				if p.ContainerPort == 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				k := portKey{p.ContainerPort, proto}
				if !seen[k] {
					seen[k] = true
					order = append(order, k)
				}
				if names[k] == "" && p.Name != "" && !taken[p.Name] {
					names[k] = p.Name
					taken[p.Name] = true
				}
			}
		}
	}
	collect(spec.Containers)
	var sidecars []corev1.Container
	for i := range spec.InitContainers {
		ic := &spec.InitContainers[i]
		if ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars = append(sidecars, *ic)
		}
	}
	collect(sidecars)
	if len(order) == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b portKey) int {
		if a.port != b.port {
			return int(a.port - b.port)
		}
		return strings.Compare(string(a.protocol), string(b.protocol))
	})
	ports := make([]corev1.ServicePort, 0, len(order))
	for _, k := range order {
		name := names[k]
		if name == "" {
			base := "p-" + strconv.Itoa(int(k.port)) + "-" + strings.ToLower(string(k.protocol))
			name = base
			for i := 2; taken[name]; i++ {
				name = base + "-" + strconv.Itoa(i)
			}
			taken[name] = true
		}
		ports = append(ports, corev1.ServicePort{Name: name, Protocol: k.protocol, Port: k.port, TargetPort: intstr.FromInt32(k.port)})
	}
	return ports
}

// portsMatch compares the fields the controller sets.
func portsMatch(have, want []corev1.ServicePort) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		h, w := have[i], want[i]
		if h.Name != w.Name || h.Protocol != w.Protocol || h.Port != w.Port || !equality.Semantic.DeepEqual(h.TargetPort, w.TargetPort) {
			return false
		}
	}
	return true
}

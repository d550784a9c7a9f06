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

package conversion

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// saveState records spoke (without its state annotation and managed
// fields) as JSON in annotation key of the hub object's metadata.
func saveState(hubMeta *metav1.ObjectMeta, key string, spoke any) error {
	b, err := json.Marshal(spoke)
	if err != nil {
		return fmt.Errorf("saving v1alpha1 state: %w", err)
	}
	if hubMeta.Annotations == nil {
		hubMeta.Annotations = map[string]string{}
	}
	hubMeta.Annotations[key] = string(b)
	return nil
}

// takeState removes annotation key from meta and decodes it into into,
// reporting whether there was one.
func takeState(meta *metav1.ObjectMeta, key string, into any) (bool, error) {
	raw, ok := meta.Annotations[key]
	if !ok {
		return false, nil
	}
	delete(meta.Annotations, key)
	if len(meta.Annotations) == 0 {
		meta.Annotations = nil
	}
	if err := json.Unmarshal([]byte(raw), into); err != nil {
		return false, fmt.Errorf("reading annotation %s: %w", key, err)
	}
	return true, nil
}

// stateMeta is the spoke's metadata as saved: no state annotation (so it
// never nests) and no managedFields (which would count against the
// annotation size limit for nothing).
func stateMeta(m metav1.ObjectMeta, key string) metav1.ObjectMeta {
	out := *m.DeepCopy()
	delete(out.Annotations, key)
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	out.ManagedFields = nil
	return out
}

// SandboxToHub converts a v1alpha1 Sandbox to v1beta1.
func SandboxToHub(in *agentsv1alpha1.Sandbox) (*agentsv1beta1.Sandbox, error) {
	out := &agentsv1beta1.Sandbox{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = agentsv1beta1.GroupName+"/v1beta1", agentsv1beta1.SandboxKind
	delete(out.Annotations, agentsv1beta1.SandboxStateAnnotation)

	s := in.Spec.DeepCopy()
	out.Spec.PodTemplate = podTemplateToHub(s.PodTemplate)
	out.Spec.VolumeClaimTemplates = vctsToHub(s.VolumeClaimTemplates)
	out.Spec.Service = s.Service
	out.Spec.ShutdownTime = s.ShutdownTime
	if s.ShutdownPolicy != nil {
		p := agentsv1beta1.ShutdownPolicy(*s.ShutdownPolicy)
		out.Spec.ShutdownPolicy = &p
	}
	out.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeRunning
	if s.Replicas != nil && *s.Replicas == 0 {
		out.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	}
	st := in.Status.DeepCopy()
	out.Status = agentsv1beta1.SandboxStatus{
		ServiceFQDN: st.ServiceFQDN, Service: st.Service, Conditions: st.Conditions,
		LabelSelector: st.LabelSelector, PodIPs: st.PodIPs,
	}

	saved := in.DeepCopy()
	saved.ObjectMeta = stateMeta(in.ObjectMeta, agentsv1beta1.SandboxStateAnnotation)
	return out, saveState(&out.ObjectMeta, agentsv1beta1.SandboxStateAnnotation, saved)
}

// SandboxFromHub converts a v1beta1 Sandbox to v1alpha1. operatingMode
// becomes replicas (Suspended 0, else 1); the saved state restores a
// replicas that was unset and the original status.replicas.
func SandboxFromHub(in *agentsv1beta1.Sandbox) (*agentsv1alpha1.Sandbox, error) {
	out := &agentsv1alpha1.Sandbox{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = agentsv1alpha1.GroupName+"/v1alpha1", agentsv1alpha1.SandboxKind
	var saved agentsv1alpha1.Sandbox
	hasState, err := takeState(&out.ObjectMeta, agentsv1beta1.SandboxStateAnnotation, &saved)
	if err != nil {
		return nil, err
	}

	s := in.Spec.DeepCopy()
	out.Spec.PodTemplate = podTemplateFromHub(s.PodTemplate)
	out.Spec.VolumeClaimTemplates = vctsFromHub(s.VolumeClaimTemplates)
	out.Spec.Service = s.Service
	out.Spec.ShutdownTime = s.ShutdownTime
	if s.ShutdownPolicy != nil {
		p := agentsv1alpha1.ShutdownPolicy(*s.ShutdownPolicy)
		out.Spec.ShutdownPolicy = &p
	}
	suspended := s.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended
	replicas := int32(1)
	if suspended {
		replicas = 0
	}
	out.Spec.Replicas = &replicas
	if hasState && !suspended && (saved.Spec.Replicas == nil || *saved.Spec.Replicas != 0) {
		out.Spec.Replicas = saved.Spec.Replicas
	}

	st := in.Status.DeepCopy()
	out.Status = agentsv1alpha1.SandboxStatus{
		ServiceFQDN: st.ServiceFQDN, Service: st.Service, Conditions: st.Conditions,
		LabelSelector: st.LabelSelector, PodIPs: st.PodIPs, Replicas: replicas,
	}
	if hasState {
		out.Status.Replicas = saved.Status.Replicas
	}
	return out, nil
}

func podTemplateToHub(in agentsv1alpha1.PodTemplate) agentsv1beta1.PodTemplate {
	return agentsv1beta1.PodTemplate{Spec: in.Spec, ObjectMeta: agentsv1beta1.PodMetadata{Labels: in.ObjectMeta.Labels, Annotations: in.ObjectMeta.Annotations}}
}

func podTemplateFromHub(in agentsv1beta1.PodTemplate) agentsv1alpha1.PodTemplate {
	return agentsv1alpha1.PodTemplate{Spec: in.Spec, ObjectMeta: agentsv1alpha1.PodMetadata{Labels: in.ObjectMeta.Labels, Annotations: in.ObjectMeta.Annotations}}
}

func vctsToHub(in []agentsv1alpha1.PersistentVolumeClaimTemplate) []agentsv1beta1.PersistentVolumeClaimTemplate {
	if in == nil {
		return nil
	}
	out := make([]agentsv1beta1.PersistentVolumeClaimTemplate, len(in))
	for i := range in {
		v := &in[i]
		out[i] = agentsv1beta1.PersistentVolumeClaimTemplate{
			EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: v.Name, Labels: v.Labels, Annotations: v.Annotations},
			Spec:                   v.Spec,
		}
	}
	return out
}

func vctsFromHub(in []agentsv1beta1.PersistentVolumeClaimTemplate) []agentsv1alpha1.PersistentVolumeClaimTemplate {
	if in == nil {
		return nil
	}
	out := make([]agentsv1alpha1.PersistentVolumeClaimTemplate, len(in))
	for i := range in {
		v := &in[i]
		out[i] = agentsv1alpha1.PersistentVolumeClaimTemplate{
			EmbeddedObjectMetadata: agentsv1alpha1.EmbeddedObjectMetadata{Name: v.Name, Labels: v.Labels, Annotations: v.Annotations},
			Spec:                   v.Spec,
		}
	}
	return out
}

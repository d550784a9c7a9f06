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
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// PVCName is the StatefulSet-style name of a Sandbox's claim: the identity
// of the data lives in the name, so a resumed or recreated Pod binds the
// same volume.
func PVCName(vct *agentsv1beta1.PersistentVolumeClaimTemplate, sandboxName string) string {
	return vct.Name + "-" + sandboxName
}

// reconcilePVCs creates each PVC of spec.volumeClaimTemplates that is
// missing, and adopts an unowned one only when it is marked adoptable or
// carries this Sandbox's name hash. PVCs are never deleted here: not on
// suspend, not on expiry; only garbage collection removes them, with the
// Sandbox.
func (c *Controller) reconcilePVCs(ctx context.Context, refs *controller.ControllerRefManager, sb *agentsv1beta1.Sandbox) error {
	for i := range sb.Spec.VolumeClaimTemplates {
		vct := &sb.Spec.VolumeClaimTemplates[i]
		name := PVCName(vct, sb.Name)
		pvc, err := c.pvcLister.PersistentVolumeClaims(sb.Namespace).Get(name)
		switch {
		case apierrors.IsNotFound(err):
			if err := c.createPVC(ctx, sb, vct, name); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if _, err := c.claimChild(ctx, refs, sb, pvc, controller.ChildControl{Kind: "PersistentVolumeClaim",
				Patch: patchFunc[*corev1.PersistentVolumeClaim](nil, c.kube.CoreV1().PersistentVolumeClaims(sb.Namespace).Patch)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Controller) createPVC(ctx context.Context, sb *agentsv1beta1.Sandbox, vct *agentsv1beta1.PersistentVolumeClaimTemplate, name string) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       sb.Namespace,
			Labels:          maps.Clone(vct.Labels),
			Annotations:     maps.Clone(vct.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sb, agentsv1beta1.SandboxGroupVersionKind)},
		},
		Spec: *vct.Spec.DeepCopy(),
	}
	if pvc.Labels == nil {
		pvc.Labels = map[string]string{}
	}
	pvc.Labels[agentsv1beta1.SandboxNameHashLabel] = agentsv1beta1.NameHash(sb.Name)
	_, err := c.kube.CoreV1().PersistentVolumeClaims(sb.Namespace).Create(ctx, pvc, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		// The cache lagged; the next sync sees it and applies the
		// ownership rules.
		return fmt.Errorf("persistentvolumeclaim %s already exists; waiting for the cache", name)
	}
	if err != nil {
		return c.createFailed(sb, pvc, "PersistentVolumeClaim", name, err)
	}
	klog.FromContext(ctx).V(2).Info("Created PersistentVolumeClaim", "pvc", klog.KObj(pvc))
	c.recorder.Eventf(sb, pvc, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Create", "Created PersistentVolumeClaim %s", name)
	return nil
}

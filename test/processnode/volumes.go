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

package processnode

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	// StorageClassName is the StorageClass whose claims a process node
	// with Options.Provision provisions: PersistentVolumeClaims of a
	// sandbox's volumeClaimTemplates name it to get a volume whose files
	// survive the Pod (suspend and resume), on the process node only.
	StorageClassName = "process-node"
	// Provisioner is the StorageClass's provisioner, and the value of the
	// provisioned-by annotation on the PersistentVolumes it creates.
	Provisioner = "agents.x-k8s.io/process-node"

	provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"
	defaultVolumeSize       = "1Gi"
)

// provisioner is a minimal external provisioner for StorageClassName:
// kube-controller-manager's PV controller leaves claims of an unknown
// provisioner to it, binds the PersistentVolume it creates (pre-bound by
// claimRef to the claim) and, once the claim is deleted, leaves the
// Released volume to it to delete. The volume's data is the directory
// volumes/<claim UID> of the state directory, which the Pods of the claim
// use as their volume.
type provisioner struct {
	n       *Node
	factory informers.SharedInformerFactory
	claims  listers.PersistentVolumeClaimLister
	volumes listers.PersistentVolumeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// Keys of the provisioner's queue.
const (
	claimKeyPrefix  = "claim/"
	volumeKeyPrefix = "volume/"
)

func (n *Node) startProvisioner(ctx context.Context) (*provisioner, error) {
	logger := klog.FromContext(ctx)
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: StorageClassName},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
	if _, err := n.kube.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating StorageClass %s: %w", StorageClassName, err)
	}
	p := &provisioner{
		n:       n,
		factory: informers.NewSharedInformerFactory(n.kube, 0),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "process-node-provisioner"}),
	}
	claimInformer := p.factory.Core().V1().PersistentVolumeClaims()
	volumeInformer := p.factory.Core().V1().PersistentVolumes()
	p.claims, p.volumes = claimInformer.Lister(), volumeInformer.Lister()
	for prefix, inf := range map[string]cache.SharedIndexInformer{claimKeyPrefix: claimInformer.Informer(), volumeKeyPrefix: volumeInformer.Informer()} {
		add := func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				p.queue.Add(prefix + key)
			}
		}
		reg, err := inf.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
			AddFunc:    add,
			UpdateFunc: func(_, cur any) { add(cur) },
		}, cache.HandlerOptions{Logger: &logger})
		if err != nil {
			return nil, err
		}
		p.synced = append(p.synced, reg.HasSynced)
	}
	p.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, p.synced...) {
		return nil, fmt.Errorf("processnode: volume informers never synced")
	}
	n.wg.Go(func() {
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			for p.processNextWorkItem(ctx) {
			}
		}, time.Second)
	})
	return p, nil
}

func (p *provisioner) processNextWorkItem(ctx context.Context) bool {
	key, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(key)
	var err error
	switch {
	case strings.HasPrefix(key, claimKeyPrefix):
		err = p.syncClaim(ctx, strings.TrimPrefix(key, claimKeyPrefix))
	case strings.HasPrefix(key, volumeKeyPrefix):
		err = p.syncVolume(ctx, strings.TrimPrefix(key, volumeKeyPrefix))
	}
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Provisioning failed", "key", key)
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

// syncClaim creates the PersistentVolume of a pending claim of the class.
func (p *provisioner) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ptr.Deref(pvc.Spec.StorageClassName, "") != StorageClassName || pvc.Spec.VolumeName != "" ||
		pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil || !validUID(pvc.UID) {
		return nil
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		size = resource.MustParse(defaultVolumeSize)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "pvc-" + string(pvc.UID),
			Annotations: map[string]string{provisionedByAnnotation: Provisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			VolumeMode:                    pvc.Spec.VolumeMode,
			StorageClassName:              StorageClassName,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			// Informational: the process node maps the claim to its own
			// state directory by UID; nothing mounts this path.
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: p.n.store.abs(volumeDir(pvc.UID)),
			}},
		},
	}
	if _, err := p.n.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("creating PersistentVolume for claim %s: %w", key, err)
	}
	klog.FromContext(ctx).V(2).Info("Provisioned volume", "claim", klog.KObj(pvc), "volume", pv.Name)
	return nil
}

// syncVolume deletes a Released volume it provisioned, and its directory.
func (p *provisioner) syncVolume(ctx context.Context, name string) error {
	pv, err := p.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pv.Annotations[provisionedByAnnotation] != Provisioner || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.ClaimRef == nil || pv.DeletionTimestamp != nil {
		return nil
	}
	if err := p.n.store.removeVolume(pv.Spec.ClaimRef.UID); err != nil {
		return fmt.Errorf("removing the directory of volume %s: %w", pv.Name, err)
	}
	uid := pv.UID
	err = p.n.kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting PersistentVolume %s: %w", pv.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted released volume", "volume", pv.Name, "claimUID", pv.Spec.ClaimRef.UID)
	return nil
}

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Index names shared by controllers that use the same informers.
const (
	// WarmPoolMemberIndex indexes Sandboxes by "<namespace>/<warm-pool label>".
	WarmPoolMemberIndex = "warmPoolSandbox"
	// ControllerUIDIndex indexes objects by the UID of their controller.
	ControllerUIDIndex = "controllerUID"
)

// AddIndexers adds the indexers that are not there yet, so controllers
// sharing an informer can each ask for the ones they need.
func AddIndexers(inf cache.SharedIndexInformer, indexers cache.Indexers) error {
	existing := inf.GetIndexer().GetIndexers()
	missing := cache.Indexers{}
	for name, fn := range indexers {
		if _, ok := existing[name]; !ok {
			missing[name] = fn
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return inf.AddIndexers(missing)
}

// IndexByWarmPool is the WarmPoolMemberIndex function.
func IndexByWarmPool(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if v, ok := m.GetLabels()[agentsv1beta1.WarmPoolSandboxLabel]; ok {
		return []string{m.GetNamespace() + "/" + v}, nil
	}
	return nil, nil
}

// IndexByControllerUID is the ControllerUIDIndex function.
func IndexByControllerUID(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// DeletedObject is the object an informer's delete handler was given: the
// last known state inside a tombstone (cache.DeletedFinalStateUnknown,
// when the watch missed the delete and a relist found the object gone),
// or obj itself.
func DeletedObject(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

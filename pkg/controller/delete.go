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
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/agentsandbox/agent-sandbox/pkg/controller/eventsink"
)

// Event reasons for the children controllers delete.
const (
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// Child is an API object a controller owns: metadata to check, and a
// runtime object to name in an Event.
type Child interface {
	metav1.Object
	runtime.Object
}

// DeleteChild deletes child with its UID as precondition, so a
// replacement of the same name is never deleted; NotFound counts as done.
// The outcome is an Event on owner naming the child (kind and why are
// for the message).
func DeleteChild(ctx context.Context, recorder eventsink.EventRecorder, owner runtime.Object, child Child, kind, why string,
	del func(ctx context.Context, name string, opts metav1.DeleteOptions) error) error {
	uid := child.GetUID()
	err := del(ctx, child.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		recorder.Eventf(owner, child, corev1.EventTypeWarning, ReasonFailedDelete, "Delete", "Failed to delete %s %s: %v", kind, child.GetName(), err)
		return fmt.Errorf("deleting %s %s: %w", kind, child.GetName(), err)
	}
	msg := fmt.Sprintf("Deleted %s %s", kind, child.GetName())
	if why != "" {
		msg += ": " + why
	}
	recorder.Eventf(owner, child, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Delete", "%s", msg)
	return nil
}

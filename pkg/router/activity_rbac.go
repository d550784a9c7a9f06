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

package router

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// activityFieldManager is the field manager of the router's activity
// writes.
const activityFieldManager = "sandbox-router"

// CheckActivityRights asks the API server (SelfSubjectAccessReview)
// whether the router may patch Sandboxes in namespace (empty: all). Without
// that right every activity write would be refused while idle suspend
// still runs, suspending sandboxes in use, so --activity-tracking refuses
// to start instead.
func CheckActivityRights(ctx context.Context, kube kubernetes.Interface, namespace string) error {
	review, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: "patch", Group: agentsv1beta1.GroupName, Resource: agentsv1beta1.SandboxesResource.Resource,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("checking the right to patch sandboxes: %w", err)
	}
	if !review.Status.Allowed {
		where := "in every namespace"
		if namespace != "" {
			where = "in namespace " + namespace
		}
		return fmt.Errorf("--activity-tracking needs patch on sandboxes.%s %s (manifests/components/router-wake-idle): %s",
			agentsv1beta1.GroupName, where, review.Status.Reason)
	}
	return nil
}

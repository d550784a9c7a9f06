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

package api

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestSchemaRejectsBadInput sends each object of schemaCorpus through the
// dynamic client, in the version it names, so that wrong types and
// unknown enum values reach the server exactly as a careless kubectl
// apply would send them. Each must be refused as Invalid with a message
// that names the offending field. v1alpha1 writes that pass validation
// go through conversion to the stored version, hence the webhook.
func TestSchemaRejectsBadInput(t *testing.T) {
	env := framework.Setup(t)
	framework.StartConversionWebhook(t, env)
	ctx := framework.Context(t, 2*time.Minute)
	ns := env.Namespace

	// The control: every object the corpus starts from is accepted.
	for kind := range plurals {
		for _, version := range []string{"v1beta1", "v1alpha1"} {
			client := env.Dynamic.Resource(gvrOf(kind, version)).Namespace(ns)
			if _, err := client.Create(ctx, valid(kind, version, "valid"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Fatalf("valid %s/%s refused: %v", kind, version, err)
			}
		}
	}
	for name, tc := range schemaCorpus() {
		t.Run(name, func(t *testing.T) {
			client := env.Dynamic.Resource(gvrOf(tc.kind, tc.version)).Namespace(ns)
			obj := tc.object()
			if !tc.status {
				tc.apply(t, obj)
				_, err := client.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				assertInvalid(t, err, tc.wantField, tc.wantDetail)
				return
			}
			obj.SetName("")
			obj.SetGenerateName("status-")
			created, err := client.Create(ctx, obj, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating the valid object: %v", err)
			}
			tc.apply(t, created)
			_, err = client.UpdateStatus(ctx, created, metav1.UpdateOptions{})
			assertInvalid(t, err, tc.wantField, tc.wantDetail)
		})
	}
}

func assertInvalid(t *testing.T, err error, wantField, wantDetail string) {
	t.Helper()
	if err == nil {
		t.Fatalf("request accepted; want Invalid naming %s", wantField)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error %v (reason %s), want Invalid", err, apierrors.ReasonForError(err))
	}
	if !strings.Contains(err.Error(), wantField) || !strings.Contains(err.Error(), wantDetail) {
		t.Errorf("error %q does not name %q with %q", err.Error(), wantField, wantDetail)
	}
}

// TestVolumeClaimTemplatesAreImmutable proves the CEL transition rule on
// v1beta1 Sandbox: the list can be neither changed, added nor removed.
func TestVolumeClaimTemplatesAreImmutable(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)

	with, err := sandboxes.Create(ctx, newSandboxWithVolume(env.Namespace, "with-volume"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	without, err := sandboxes.Create(ctx, newSandbox(env.Namespace, "without-volume"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	changed := with.DeepCopy()
	changed.Spec.VolumeClaimTemplates[0].Name = "scratch"
	_, err = sandboxes.Update(ctx, changed, metav1.UpdateOptions{})
	assertInvalid(t, err, "spec", "volumeClaimTemplates is immutable")

	removed := with.DeepCopy()
	removed.Spec.VolumeClaimTemplates = nil
	_, err = sandboxes.Update(ctx, removed, metav1.UpdateOptions{})
	assertInvalid(t, err, "spec", "volumeClaimTemplates is immutable")

	added := without.DeepCopy()
	added.Spec.VolumeClaimTemplates = newSandboxWithVolume(env.Namespace, "x").Spec.VolumeClaimTemplates
	_, err = sandboxes.Update(ctx, added, metav1.UpdateOptions{})
	assertInvalid(t, err, "spec", "volumeClaimTemplates is immutable")

	// Everything else in the spec stays mutable.
	suspended := with.DeepCopy()
	suspended.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	suspended.Spec.PodTemplate.Spec.Containers[0].Image = "python:3.14"
	if _, err := sandboxes.Update(ctx, suspended, metav1.UpdateOptions{}); err != nil {
		t.Errorf("updating operatingMode and image: %v", err)
	}
}

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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestEmbeddedSchemasRejectBadInput breaks, one at a time, every rule of
// the CRDs that schemaCorpus leaves out: the hundreds that Kubernetes'
// own types (PodSpec, PersistentVolumeClaimSpec, NetworkPolicy rules,
// Condition) bring into the schemas, and the type of every field of the
// project's own. Each object is the smallest one the version's schema
// accepts (the control proves it is accepted) with the one rule broken;
// the API server must refuse it as Invalid, naming that field and no
// other. Dry runs: nothing is stored.
func TestEmbeddedSchemasRejectBadInput(t *testing.T) {
	env := framework.Setup(t)
	framework.StartConversionWebhook(t, env)
	ctx := framework.Context(t, 5*time.Minute)
	dryRun := []string{metav1.DryRunAll}

	inCorpus := map[string]bool{}
	for _, e := range schemaCorpus() {
		inCorpus[e.rule] = true
	}
	type version struct{ kind, version string }
	// stored holds, per kind and version, an object created valid, whose
	// status the status rules are tried on.
	stored := map[version]*unstructured.Unstructured{}
	swept := 0
	for _, r := range crdRules(t) {
		if (!r.embedded() && r.keyword != "type") || inCorpus[r.id()] || r.keyword == "cel" {
			continue
		}
		swept++
		v := version{r.kind, r.version}
		client := env.Dynamic.Resource(gvrOf(r.kind, r.version)).Namespace(env.Namespace)
		if _, ok := stored[v]; !ok {
			base := smallest(t, r)
			base.SetName("")
			base.SetGenerateName("control-")
			created, err := client.Create(ctx, base, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("control: the smallest %s/%s refused: %v", r.kind, r.version, err)
			}
			if statusSchema, ok := r.root.Properties["status"]; ok {
				created.Object["status"] = minimal(t, &statusSchema)
				if _, err := client.UpdateStatus(ctx, created, metav1.UpdateOptions{DryRun: dryRun}); err != nil {
					t.Fatalf("control: the smallest %s/%s status refused: %v", r.kind, r.version, err)
				}
			}
			stored[v] = created
		}
		t.Run(r.id(), func(t *testing.T) {
			value, remove := r.violation(t)
			leaf := func() (any, bool) { return value, remove }
			var err error
			if r.status() {
				obj := stored[v].DeepCopy()
				obj.Object, _ = asObject(with(t, obj.Object, r.root, r.steps, leaf))
				_, err = client.UpdateStatus(ctx, obj, metav1.UpdateOptions{DryRun: dryRun})
			} else {
				obj := smallest(t, r)
				obj.Object, _ = asObject(with(t, obj.Object, r.root, r.steps, leaf))
				_, err = client.Create(ctx, obj, metav1.CreateOptions{DryRun: dryRun})
			}
			assertOnlyField(t, err, r.field())
		})
	}
	t.Logf("%d rules swept", swept)
}

func asObject(v any, _ bool) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}

// smallest is the smallest object r's version accepts.
func smallest(t *testing.T, r crdRule) *unstructured.Unstructured {
	t.Helper()
	obj, _ := minimal(t, r.root).(map[string]any)
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(groupOf(r.kind) + "/" + r.version)
	u.SetKind(r.kind)
	u.SetName("smallest")
	return u
}

// assertOnlyField: err is Invalid, one of its causes is at field, and
// none is outside it. The scale subresource of v1alpha1 Sandbox adds
// causes of its own for its replicas and selector paths, spelled with a
// leading dot, when a type error makes them unreadable; where the schema
// has CEL rules, a cause without a field says they were skipped.
func assertOnlyField(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want Invalid at %s", field)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error %v (reason %s), want Invalid at %s", err, apierrors.ReasonForError(err), field)
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil || len(status.Status().Details.Causes) == 0 {
		t.Fatalf("error %v names no field; want %s", err, field)
	}
	at := false
	for _, c := range status.Status().Details.Causes {
		if strings.Contains(c.Message, "some validation rules were not checked") {
			continue // the CEL rules of a schema-invalid object are skipped, and said so
		}
		f := strings.TrimPrefix(c.Field, ".")
		at = at || c.Field == field
		if f != field && !strings.HasPrefix(f, field+".") && !strings.HasPrefix(f, field+"[") {
			t.Errorf("cause %q at %q; want every cause at or inside %q", c.Message, c.Field, field)
		}
	}
	if !at {
		t.Errorf("no cause at %q in %v", field, err)
	}
}

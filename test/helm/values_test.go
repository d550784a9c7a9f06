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

package helm

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func template(t *testing.T, h *Helm, set ...string) []*unstructured.Unstructured {
	t.Helper()
	var args []string
	for _, s := range set {
		args = append(args, "--set", s)
	}
	objs, err := h.Template(ChartDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestControllerFlags: each tuning value becomes its flag, printed so the
// binary parses it (integers in full: YAML numbers arrive as floats, and a
// float of 33554432 would print as 3.3554432e+07), after the release's
// own arguments.
func TestControllerFlags(t *testing.T) {
	h := New(t)
	objs := template(t, h,
		"controller.workers.sandbox=200",
		"controller.workers.sandboxClaim=80",
		"controller.kubeAPI.qps=-1",
		"controller.kubeAPI.burst=50",
		"controller.warmPool.maxBatchSize=1000",
		"controller.warmPool.replenishDelay=2s",
		"controller.warmPool.maxRefillRate=2.5",
		"controller.warmPool.eviction=false",
		"controller.sandbox.firstStatusDelay=0s",
		"controller.logLevel=2",
		"webhook.maxRequestBytes=33554432",
		"controller.extraArgs[0]=--enable-pprof",
	)
	want := []string{
		"--leader-elect=true",
		"--extensions",
		"--sandbox-concurrent-workers=200",
		"--sandbox-claim-concurrent-workers=80",
		"--kube-api-qps=-1",
		"--kube-api-burst=50",
		"--sandbox-warm-pool-max-batch-size=1000",
		"--sandbox-warm-pool-replenish-delay=2s",
		"--sandbox-warm-pool-max-refill-rate=2.5",
		"--enable-warm-pool-eviction=false",
		"--sandbox-first-status-delay=0s",
		"--v=2",
		"--webhook-max-request-bytes=33554432",
		"--enable-pprof",
	}
	if d := cmp.Diff(want, ContainerArgs(objs, "agent-sandbox-controller")); d != "" {
		t.Errorf("controller args (-want +got):\n%s", d)
	}
}

// TestSchemaRejectsWrongTypes: values.schema.json turns a mistyped or
// misspelt value into an error naming the value, before anything is
// rendered. Each case has a well-typed twin that renders, so the error
// comes from the type alone.
func TestSchemaRejectsWrongTypes(t *testing.T) {
	h := New(t)
	cases := []struct {
		bad, good string
		// What the error must say: the value's path and the expectation.
		want []string
	}{
		{"controller.workers.sandbox=many", "controller.workers.sandbox=10", []string{"/controller/workers/sandbox", "integer"}},
		{"controller.replicas=true", "controller.replicas=2", []string{"/controller/replicas", "integer"}},
		{"controller.warmPool.eviction=sometimes", "controller.warmPool.eviction=true", []string{"/controller/warmPool/eviction", "boolean"}},
		{"controller.sandbox.firstStatusDelay=5 seconds", "controller.sandbox.firstStatusDelay=5s", []string{"/controller/sandbox/firstStatusDelay"}},
		{"controller.podLabels.team=7", "controller.podLabels.team=seven", []string{"/controller/podLabels/team", "string"}},
		{"router.auth.mode=oauth", "router.auth.mode=tokenreview", []string{"/router/auth/mode"}},
		{"controller.image.digest=latest", "controller.image.digest=sha256:" + strings.Repeat("ab", 32), []string{"/controller/image/digest"}},
		{"router.wakeAuthz=anyone", "router.wakeAuthz=proxy", []string{"/router/wakeAuthz"}},
		// The router refuses a zero --wake-timeout.
		{"router.wakeTimeout=0s", "router.wakeTimeout=30s", []string{"/router/wakeTimeout"}},
		{"controller.idleSuspendGrace=soon", "controller.idleSuspendGrace=45s", []string{"/controller/idleSuspendGrace"}},
		// A misspelt key would otherwise be ignored silently.
		{"controller.replica=2", "controller.replicas=2", []string{"replica"}},
	}
	for _, tc := range cases {
		t.Run(tc.bad, func(t *testing.T) {
			if _, err := h.Template(ChartDir(), "--set", tc.good); err != nil {
				t.Fatalf("the well-typed %s fails: %v", tc.good, err)
			}
			_, err := h.Template(ChartDir(), "--set", tc.bad)
			var run *RunError
			if !errors.As(err, &run) {
				t.Fatalf("--set %s renders; want a schema error", tc.bad)
			}
			msg := run.Stderr
			if !strings.Contains(msg, "values don't meet the specifications of the schema") {
				t.Errorf("--set %s: not a schema error:\n%s", tc.bad, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("--set %s: the error does not say %q:\n%s", tc.bad, w, msg)
				}
			}
		})
	}
}

// TestCertManagerWebhook: with cert-manager the controller stops managing
// its certificate, mounts the Secret cert-manager writes, and loses the
// Secret permissions it no longer needs.
func TestCertManagerWebhook(t *testing.T) {
	h := New(t)
	objs := template(t, h, "webhook.certManager.enabled=true")
	cert := Find(objs, "Certificate", "agent-sandbox-webhook")
	if cert == nil || Find(objs, "Issuer", "agent-sandbox-selfsigned") == nil {
		t.Fatal("no Certificate agent-sandbox-webhook and self-signed Issuer")
	}
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, "agent-sandbox-webhook-service."+ReleaseNamespace+".svc") {
		t.Errorf("the certificate's names %v miss the webhook Service", dns)
	}
	args := ContainerArgs(objs, "agent-sandbox-controller")
	for _, a := range []string{"--manage-webhook-certs=false", "--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs"} {
		if !slices.Contains(args, a) {
			t.Errorf("args %v lack %s", args, a)
		}
	}
	d := Find(objs, "Deployment", "agent-sandbox-controller")
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	mounted := false
	for _, v := range volumes {
		name, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
		mounted = mounted || name == secret
	}
	if !mounted {
		t.Errorf("the Deployment does not mount Secret %s: %v", secret, volumes)
	}
	role := Find(objs, "Role", "agent-sandbox-controller")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
		if slices.Contains(resources, "secrets") {
			t.Errorf("the Role still grants secrets: %v", r)
		}
	}

	// With an issuer of the user's, the chart makes none.
	objs = template(t, h, "webhook.certManager.enabled=true",
		"webhook.certManager.issuerRef.name=corp-ca", "webhook.certManager.issuerRef.kind=ClusterIssuer")
	if Find(objs, "Issuer", "agent-sandbox-selfsigned") != nil {
		t.Error("a self-signed Issuer is rendered although issuerRef names one")
	}
	ref, _, _ := unstructured.NestedStringMap(Find(objs, "Certificate", "agent-sandbox-webhook").Object, "spec", "issuerRef")
	if ref["name"] != "corp-ca" || ref["kind"] != "ClusterIssuer" {
		t.Errorf("issuerRef = %v, want corp-ca/ClusterIssuer", ref)
	}
}

// TestPodSettings: the scheduling, security and metadata values reach the
// controller Pod, and an image digest pins it.
func TestPodSettings(t *testing.T) {
	h := New(t)
	digest := "sha256:" + strings.Repeat("0f", 32)
	objs := template(t, h,
		"controller.image.digest="+digest,
		"controller.image.pullPolicy=Always",
		"controller.replicas=3",
		"controller.priorityClassName=system-cluster-critical",
		"controller.nodeSelector.pool=infra",
		"controller.tolerations[0].key=infra",
		"controller.tolerations[0].operator=Exists",
		"controller.podAnnotations.team=sandboxes",
		"controller.podLabels.tier=control",
		"controller.podSecurityContext.fsGroup=65532",
		"controller.containerSecurityContext.privileged=false",
		"serviceAccount.name=custom-sa",
		"serviceAccount.annotations.owner=platform",
		"extensions.allowedLabelDomains[0]=example.com",
	)
	d := Find(objs, "Deployment", "agent-sandbox-controller")
	get := func(path ...string) any {
		v, _, err := unstructured.NestedFieldNoCopy(d.Object, path...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	spec := []string{"spec", "template", "spec"}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"spec", "replicas"}, float64(3)},
		{append(spec, "priorityClassName"), "system-cluster-critical"},
		{append(spec, "nodeSelector", "pool"), "infra"},
		{append(spec, "serviceAccountName"), "custom-sa"},
		{append(spec, "securityContext", "fsGroup"), float64(65532)},
		{append(spec, "securityContext", "runAsNonRoot"), true},
		{[]string{"spec", "template", "metadata", "annotations", "team"}, "sandboxes"},
		{[]string{"spec", "template", "metadata", "labels", "tier"}, "control"},
		{[]string{"spec", "template", "metadata", "labels", "app"}, "agent-sandbox-controller"},
	}
	for _, c := range checks {
		if got := get(c.path...); !cmp.Equal(got, c.want) {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	containers := get(append(spec, "containers")...).([]any)
	c := containers[0].(map[string]any)
	if c["image"] != "ghcr.io/agentsandbox/agent-sandbox-controller@"+digest || c["imagePullPolicy"] != "Always" {
		t.Errorf("image %v (%v), want the digest, Always", c["image"], c["imagePullPolicy"])
	}
	if sc := c["securityContext"].(map[string]any); sc["privileged"] != false || sc["readOnlyRootFilesystem"] != true {
		t.Errorf("container securityContext %v", sc)
	}
	tolerations := get(append(spec, "tolerations")...).([]any)
	if len(tolerations) != 1 || tolerations[0].(map[string]any)["key"] != "infra" {
		t.Errorf("tolerations %v", tolerations)
	}
	sa := Find(objs, "ServiceAccount", "custom-sa")
	if sa == nil || sa.GetAnnotations()["owner"] != "platform" {
		t.Errorf("ServiceAccount custom-sa with its annotation: %v", sa)
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		b := Find(objs, kind, "agent-sandbox-controller")
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		if len(subjects) != 1 || subjects[0].(map[string]any)["name"] != "custom-sa" {
			t.Errorf("%s subjects %v, want custom-sa", kind, subjects)
		}
	}
	cm := Find(objs, "ConfigMap", "agent-sandbox-config")
	if cm == nil {
		t.Fatal("no ConfigMap agent-sandbox-config for allowedLabelDomains")
	}
	if v, _, _ := unstructured.NestedString(cm.Object, "data", "allowed-label-domains"); v != "example.com" {
		t.Errorf("allowed-label-domains = %q", v)
	}
	if get("spec", "template", "metadata", "annotations", "checksum/agent-sandbox-config") == nil {
		t.Error("no checksum annotation: a changed ConfigMap would not restart the controller, which reads it at start")
	}
}

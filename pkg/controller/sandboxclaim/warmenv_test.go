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

package sandboxclaim

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// warmEnvTemplate is newTemplate opted in to warm env on port 8888, under
// the policy Allowed.
func warmEnvTemplate() *extv1beta1.SandboxTemplate {
	tmpl := newTemplate()
	tmpl.Annotations = map[string]string{extv1beta1.WarmEnvPortAnnotation: "8888"}
	tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyAllowed
	return tmpl
}

func withEnv(env ...extv1beta1.EnvVar) func(*extv1beta1.SandboxClaim) {
	return func(c *extv1beta1.SandboxClaim) { c.Spec.Env = env }
}

// takeoverWithEnv is takeover with the env annotation set to annotation
// (JSON), in the same patch.
func takeoverWithEnv(t *testing.T, claim *extv1beta1.SandboxClaim, name, annotation string) action {
	a := takeover(t, claim, name)
	md := a.Body.(map[string]any)["metadata"].(map[string]any)
	md["annotations"].(map[string]any)[agentsv1beta1.EnvAnnotation] = annotation
	return a
}

// A claim with env on an opted-in template takes a warm member like a
// plain claim: one takeover patch that also carries the env annotation
// (in the order the policy applied it: targeted variables first),
// one status write with WarmStart=True, no other write, no ColdStart.
func TestSyncWarmEnvTakesAMember(t *testing.T) {
	claim := newClaim("c1", withEnv(extv1beta1.EnvVar{Name: "TOKEN", Value: "s3cr\"et\n"}, extv1beta1.EnvVar{Name: "TASK", Value: "1", ContainerName: "agent"}))
	f := newFixture(t, warmEnvTemplate(), newPool(), claim, newMember("pool-a", memberReady, time.Minute))

	f.runOK("c1")
	f.expectActions(
		takeoverWithEnv(t, claim, "pool-a", `{"port":8888,"env":[{"name":"TASK","value":"1"},{"name":"TOKEN","value":"s3cr\"et\n"}]}`),
		boundStatus(t, "c1", "pool-a"))
	f.expectEvents("Normal SandboxAdopted Adopted warm Sandbox pool-a from pool pool")
}

// The exact bytes of the takeover patch of a claim with env: the
// annotation rides in metadata.annotations next to the pool's keys being
// removed, and the spec is not touched (the generation stays).
func TestTakeoverPatchBytesWithEnv(t *testing.T) {
	claim := newClaim("c1", withEnv(extv1beta1.EnvVar{Name: "A", Value: "1"}))
	b, err := takeoverPatch(claim, newPool(), newTemplate(), newMember("pool-a", memberReady, time.Minute), now, `{"port":8888,"env":[{"name":"A","value":"1"}]}`, "")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"annotations":{"agents.x-k8s.io/env":"{\"port\":8888,\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}","agents.x-k8s.io/warm-pool-member":null},` +
		`"labels":{"agents.x-k8s.io/claim-uid":"c1-uid","agents.x-k8s.io/created-by":null,"agents.x-k8s.io/launch-type":"warm",` +
		`"agents.x-k8s.io/sandbox-pod-template-hash":null,"agents.x-k8s.io/sandbox-template-hash":null,"agents.x-k8s.io/sandbox-template-ref-hash":"` +
		agentsv1beta1.NameHash("python") + `","agents.x-k8s.io/warm-pool-sandbox":null},` +
		`"ownerReferences":[{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","name":"c1","uid":"c1-uid","controller":true,"blockOwnerDeletion":true}],` +
		`"resourceVersion":"5"}}`
	if string(b) != want {
		t.Errorf("patch\n got %s\nwant %s", b, want)
	}
}

// A pool member that someone gave an env annotation loses it when a plain
// claim takes it, in the takeover patch; a claim with env replaces it.
func TestSyncForgedEnvOnAMemberNeverSurvives(t *testing.T) {
	forged := func() *agentsv1beta1.Sandbox {
		sb := newMember("pool-a", memberReady, time.Minute)
		sb.Annotations[agentsv1beta1.EnvAnnotation] = `{"port":8888,"env":[{"name":"TOKEN","value":"evil"}]}`
		return sb
	}
	t.Run("plain claim", func(t *testing.T) {
		claim := newClaim("c1")
		f := newFixture(t, warmEnvTemplate(), newPool(), claim, forged())
		f.runOK("c1")
		a := takeover(t, claim, "pool-a")
		a.Body.(map[string]any)["metadata"].(map[string]any)["annotations"].(map[string]any)[agentsv1beta1.EnvAnnotation] = nil
		f.expectActions(a, boundStatus(t, "c1", "pool-a"))
	})
	t.Run("claim with env", func(t *testing.T) {
		claim := newClaim("c1", withEnv(extv1beta1.EnvVar{Name: "TASK", Value: "2"}))
		f := newFixture(t, warmEnvTemplate(), newPool(), claim, forged())
		f.runOK("c1")
		f.expectActions(takeoverWithEnv(t, claim, "pool-a", `{"port":8888,"env":[{"name":"TASK","value":"2"}]}`), boundStatus(t, "c1", "pool-a"))
	})
}

// What still forces a cold start, with its WarmStart reason and (when the
// claim caused it) a ColdStart Event; a policy refusal stays a refusal.
func TestSyncWarmEnvColdReasons(t *testing.T) {
	sidecar := func(tmpl *extv1beta1.SandboxTemplate) {
		tmpl.Spec.PodTemplate.Spec.Containers = append(tmpl.Spec.PodTemplate.Spec.Containers, corev1.Container{Name: "proxy", Image: "envoy"})
	}
	for name, tc := range map[string]struct {
		tmpl      func(*extv1beta1.SandboxTemplate)
		claim     func(*extv1beta1.SandboxClaim)
		optOut    bool
		members   bool
		want      string // WarmStart reason; "" for a refusal
		wantEvent bool
	}{
		"template not opted in": {claim: withEnv(extv1beta1.EnvVar{Name: "A", Value: "1"}), optOut: true, members: true,
			want: extv1beta1.ColdReasonWarmEnvNotEnabled, wantEvent: true},
		"targets a sidecar": {tmpl: sidecar, claim: withEnv(extv1beta1.EnvVar{Name: "A", Value: "1", ContainerName: "proxy"}), members: true,
			want: extv1beta1.ColdReasonEnvTargetsOtherContainer, wantEvent: true},
		"9 KiB of env": {claim: withEnv(extv1beta1.EnvVar{Name: "A", Value: strings.Repeat("x", 9<<10)}), members: true,
			want: extv1beta1.ColdReasonEnvTooLarge, wantEvent: true},
		"volume claim templates": {tmpl: func(tmpl *extv1beta1.SandboxTemplate) {
			tmpl.Spec.VolumeClaimTemplatesPolicy = extv1beta1.VolumeClaimTemplatesPolicyAllowed
		}, claim: func(c *extv1beta1.SandboxClaim) {
			v := agentsv1beta1.PersistentVolumeClaimTemplate{}
			v.Name = "data"
			c.Spec.VolumeClaimTemplates = []agentsv1beta1.PersistentVolumeClaimTemplate{v}
		}, members: true, want: extv1beta1.ColdReasonVolumesNeedColdStart, wantEvent: true},
		"no member": {claim: withEnv(extv1beta1.EnvVar{Name: "A", Value: "1"}), want: extv1beta1.ColdReasonNoReadyMember},
		"Disallowed": {tmpl: func(tmpl *extv1beta1.SandboxTemplate) {
			tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyDisallowed
		}, claim: withEnv(extv1beta1.EnvVar{Name: "A", Value: "1"}), members: true},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := warmEnvTemplate()
			if tc.optOut {
				tmpl.Annotations = nil
			}
			if tc.tmpl != nil {
				tc.tmpl(tmpl)
			}
			claim := newClaim("c1", tc.claim)
			f := newFixture(t, tmpl, newPool(), claim)
			if tc.members {
				f.add(newMember("pool-a", memberReady, time.Minute))
			}
			f.runOK("c1")
			var got *extv1beta1.SandboxClaim
			var created bool
			for _, a := range f.actions() {
				switch {
				case a.Verb == "patch" && a.Resource == "sandboxes":
					t.Errorf("took a warm member: %v", a)
				case a.Verb == "create":
					created = true
				}
			}
			obj, err := f.agents.Tracker().Get(extv1beta1.SandboxClaimsResource, ns, "c1")
			if err != nil {
				t.Fatal(err)
			}
			got = obj.(*extv1beta1.SandboxClaim)
			cond := meta.FindStatusCondition(got.Status.Conditions, extv1beta1.ClaimConditionWarmStart)
			var events []string
			for len(f.recorder.Events) > 0 {
				events = append(events, <-f.recorder.Events)
			}
			if tc.want == "" {
				ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
				if created || cond != nil || ready == nil || ready.Reason != extv1beta1.ClaimReasonEnvVarsRejected {
					t.Errorf("created %v, WarmStart %v, Ready %v: want a refusal and no Sandbox", created, cond, ready)
				}
				return
			}
			if !created || cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != tc.want {
				t.Fatalf("created %v, WarmStart %+v: want a cold Sandbox and WarmStart=False/%s", created, cond, tc.want)
			}
			wantEvent := "Normal ColdStart " + tc.want + ": " + coldMessages[tc.want]
			if has := len(events) == 2 && events[1] == wantEvent; has != tc.wantEvent {
				t.Errorf("events %q; want the ColdStart Event: %v", events, tc.wantEvent)
			}
			for _, e := range events {
				if strings.Contains(e, "xxxx") {
					t.Errorf("an Event holds a value: %q", e)
				}
			}
		})
	}
}

// A binding found after a restart is trusted only with exactly the env
// annotation the claim's takeover writes: a copy of a member pre-created
// with an env of someone else's choosing is not the claim's.
func TestTrustedBindingWarmEnv(t *testing.T) {
	envClaim := newClaim("c1", withEnv(extv1beta1.EnvVar{Name: "TASK", Value: "1"}))
	bound := func(claim *extv1beta1.SandboxClaim, annotation string) *agentsv1beta1.Sandbox {
		sb := newMember("pool-a", memberReady, time.Minute)
		delete(sb.Labels, agentsv1beta1.WarmPoolSandboxLabel)
		delete(sb.Annotations, agentsv1beta1.WarmPoolMemberAnnotation)
		sb.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)}
		if annotation != "" {
			sb.Annotations[agentsv1beta1.EnvAnnotation] = annotation
		}
		return sb
	}
	own := `{"port":8888,"env":[{"name":"TASK","value":"1"}]}`
	for name, tc := range map[string]struct {
		claim *extv1beta1.SandboxClaim
		sb    *agentsv1beta1.Sandbox
		want  bool
	}{
		"the claim's own env":        {envClaim, bound(envClaim, own), true},
		"another env":                {envClaim, bound(envClaim, `{"port":8888,"env":[{"name":"TASK","value":"evil"}]}`), false},
		"no env where the claim has": {envClaim, bound(envClaim, ""), false},
		"env on a plain claim's":     {newClaim("c1"), bound(newClaim("c1"), own), false},
		"a plain claim's, no env":    {newClaim("c1"), bound(newClaim("c1"), ""), true},
		"another port":               {envClaim, bound(envClaim, `{"port":9999,"env":[{"name":"TASK","value":"1"}]}`), false},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, warmEnvTemplate(), newPool())
			if got := f.c.trustedBinding(tc.claim, tc.sb); got != tc.want {
				t.Errorf("trusted = %v, want %v", got, tc.want)
			}
		})
	}
}

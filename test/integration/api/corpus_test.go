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
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// plurals are the resources of the four kinds.
var plurals = map[string]string{
	"Sandbox": "sandboxes", "SandboxTemplate": "sandboxtemplates",
	"SandboxClaim": "sandboxclaims", "SandboxWarmPool": "sandboxwarmpools",
}

func groupOf(kind string) string {
	if kind == "Sandbox" {
		return "agents.x-k8s.io"
	}
	return "extensions.agents.x-k8s.io"
}

func gvrOf(kind, version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: groupOf(kind), Version: version, Resource: plurals[kind]}
}

func containers() []any {
	return []any{map[string]any{"name": "agent", "image": "python:3.13"}}
}

// valid is a small valid object of kind in version, as a client would
// write it; each corpus entry breaks one thing in it.
func valid(kind, version, name string) *unstructured.Unstructured {
	blueprint := map[string]any{"podTemplate": map[string]any{"spec": map[string]any{"containers": containers()}}}
	spec := map[string]map[string]any{
		"Sandbox/v1beta1":          blueprint,
		"Sandbox/v1alpha1":         blueprint,
		"SandboxTemplate/v1beta1":  blueprint,
		"SandboxTemplate/v1alpha1": blueprint,
		"SandboxClaim/v1beta1":     {"warmPoolRef": map[string]any{"name": "pool"}},
		"SandboxClaim/v1alpha1":    {"sandboxTemplateRef": map[string]any{"name": "tmpl"}},
		"SandboxWarmPool/v1beta1":  {"sandboxTemplateRef": map[string]any{"name": "tmpl"}},
		"SandboxWarmPool/v1alpha1": {"replicas": int64(1), "sandboxTemplateRef": map[string]any{"name": "tmpl"}},
	}[kind+"/"+version]
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": groupOf(kind) + "/" + version, "kind": kind,
		"metadata": map[string]any{"name": name},
		"spec":     deepCopy(spec),
	}}
}

func deepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

// corpusEntry is one malformed object: valid(kind, version) with the
// value at path replaced (removed when value is nil).
type corpusEntry struct {
	// rule is the id of the CRD rule the entry breaks (see crdRule.id);
	// empty for the API server's own checks of metadata.
	rule          string
	kind, version string
	// name overrides the object's name.
	name  string
	path  []string
	value any
	// status: the object is created valid, then the change is sent to
	// the status subresource, where status rules apply.
	status bool
	// wantField and wantDetail must both appear in the error message.
	wantField, wantDetail string
}

func (e corpusEntry) object() *unstructured.Unstructured {
	name := e.name
	if name == "" {
		name = "bad"
	}
	return valid(e.kind, e.version, name)
}

func (e corpusEntry) apply(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	switch {
	case e.path == nil:
	case e.value == nil:
		unstructured.RemoveNestedField(u.Object, e.path...)
	default:
		if err := unstructured.SetNestedField(u.Object, e.value, e.path...); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	unsupported = "Unsupported value"
	required    = "Required value"
	nonNegative = "greater than or equal to 0"
)

// schemaCorpus holds one malformed object per rule of the project's own
// fields in every served version (TestCorpusCoversEveryRule keeps it
// complete), plus the Kubernetes-embedded rules and metadata checks a
// user meets most; TestEmbeddedSchemasRejectBadInput sweeps the others.
func schemaCorpus() map[string]corpusEntry {
	p := func(s ...string) []string { return s }
	c := map[string]corpusEntry{}
	// Sandbox and SandboxTemplate share the blueprint's rules.
	for _, kind := range []string{"Sandbox", "SandboxTemplate"} {
		for _, v := range []string{"v1beta1", "v1alpha1"} {
			id := kind + "/" + v + " "
			c[id+"without spec"] = corpusEntry{rule: id + ".spec required", kind: kind, version: v,
				path: p("spec"), wantField: "spec", wantDetail: required}
			c[id+"without podTemplate"] = corpusEntry{rule: id + ".spec.podTemplate required", kind: kind, version: v,
				path: p("spec", "podTemplate"), wantField: "spec.podTemplate", wantDetail: required}
			c[id+"without podTemplate.spec"] = corpusEntry{rule: id + ".spec.podTemplate.spec required", kind: kind, version: v,
				path: p("spec", "podTemplate", "spec"), wantField: "spec.podTemplate.spec", wantDetail: required}
			c[id+"volumeClaimTemplate without spec"] = corpusEntry{rule: id + ".spec.volumeClaimTemplates[*].spec required", kind: kind, version: v,
				path: p("spec", "volumeClaimTemplates"), value: []any{map[string]any{"metadata": map[string]any{"name": "data"}}},
				wantField: "spec.volumeClaimTemplates[0].spec", wantDetail: required}
		}
	}
	for _, v := range []string{"v1beta1", "v1alpha1"} {
		sb, tmpl, claim, pool := "Sandbox/"+v+" ", "SandboxTemplate/"+v+" ", "SandboxClaim/"+v+" ", "SandboxWarmPool/"+v+" "
		c[sb+"shutdownPolicy outside the enum"] = corpusEntry{rule: sb + ".spec.shutdownPolicy enum", kind: "Sandbox", version: v,
			path: p("spec", "shutdownPolicy"), value: "DeleteForeground", wantField: "spec.shutdownPolicy", wantDetail: unsupported}
		c[sb+"shutdownTime not RFC 3339"] = corpusEntry{rule: sb + ".spec.shutdownTime format", kind: "Sandbox", version: v,
			path: p("spec", "shutdownTime"), value: "tomorrow", wantField: "spec.shutdownTime", wantDetail: "date-time"}

		c[tmpl+"networkPolicyManagement outside the enum"] = corpusEntry{rule: tmpl + ".spec.networkPolicyManagement enum", kind: "SandboxTemplate", version: v,
			path: p("spec", "networkPolicyManagement"), value: "Sometimes", wantField: "spec.networkPolicyManagement", wantDetail: unsupported}
		c[tmpl+"envVarsInjectionPolicy outside the enum"] = corpusEntry{rule: tmpl + ".spec.envVarsInjectionPolicy enum", kind: "SandboxTemplate", version: v,
			path: p("spec", "envVarsInjectionPolicy"), value: "Always", wantField: "spec.envVarsInjectionPolicy", wantDetail: unsupported}

		c[claim+"without spec"] = corpusEntry{rule: claim + ".spec required", kind: "SandboxClaim", version: v,
			path: p("spec"), wantField: "spec", wantDetail: required}
		c[claim+"env entry without a name"] = corpusEntry{rule: claim + ".spec.env[*].name required", kind: "SandboxClaim", version: v,
			path: p("spec", "env"), value: []any{map[string]any{"value": "x"}}, wantField: "spec.env[0].name", wantDetail: required}
		c[claim+"env entry without a value"] = corpusEntry{rule: claim + ".spec.env[*].value required", kind: "SandboxClaim", version: v,
			path: p("spec", "env"), value: []any{map[string]any{"name": "TOKEN"}}, wantField: "spec.env[0].value", wantDetail: required}
		c[claim+"lifecycle.shutdownPolicy outside the enum"] = corpusEntry{rule: claim + ".spec.lifecycle.shutdownPolicy enum", kind: "SandboxClaim", version: v,
			path: p("spec", "lifecycle"), value: map[string]any{"shutdownPolicy": "Orphan"}, wantField: "spec.lifecycle.shutdownPolicy", wantDetail: unsupported}
		c[claim+"lifecycle.shutdownTime not RFC 3339"] = corpusEntry{rule: claim + ".spec.lifecycle.shutdownTime format", kind: "SandboxClaim", version: v,
			path: p("spec", "lifecycle"), value: map[string]any{"shutdownTime": "in an hour"}, wantField: "spec.lifecycle.shutdownTime", wantDetail: "date-time"}
		c[claim+"negative ttlSecondsAfterFinished"] = corpusEntry{rule: claim + ".spec.lifecycle.ttlSecondsAfterFinished minimum", kind: "SandboxClaim", version: v,
			path: p("spec", "lifecycle"), value: map[string]any{"ttlSecondsAfterFinished": int64(-5)}, wantField: "spec.lifecycle.ttlSecondsAfterFinished", wantDetail: nonNegative}

		c[pool+"without spec"] = corpusEntry{rule: pool + ".spec required", kind: "SandboxWarmPool", version: v,
			path: p("spec"), wantField: "spec", wantDetail: required}
		c[pool+"negative replicas"] = corpusEntry{rule: pool + ".spec.replicas minimum", kind: "SandboxWarmPool", version: v,
			path: p("spec", "replicas"), value: int64(-1), wantField: "spec.replicas", wantDetail: nonNegative}
		c[pool+"without sandboxTemplateRef"] = corpusEntry{rule: pool + ".spec.sandboxTemplateRef required", kind: "SandboxWarmPool", version: v,
			path: p("spec", "sandboxTemplateRef"), wantField: "spec.sandboxTemplateRef", wantDetail: required}
		c[pool+"without sandboxTemplateRef.name"] = corpusEntry{rule: pool + ".spec.sandboxTemplateRef.name required", kind: "SandboxWarmPool", version: v,
			path: p("spec", "sandboxTemplateRef", "name"), wantField: "spec.sandboxTemplateRef.name", wantDetail: required}
		c[pool+"updateStrategy.type outside the enum"] = corpusEntry{rule: pool + ".spec.updateStrategy.type enum", kind: "SandboxWarmPool", version: v,
			path: p("spec", "updateStrategy"), value: map[string]any{"type": "RollingUpdate"}, wantField: "spec.updateStrategy.type", wantDetail: unsupported}
	}

	// What only v1beta1 has.
	c["Sandbox/v1beta1 operatingMode outside the enum"] = corpusEntry{rule: "Sandbox/v1beta1 .spec.operatingMode enum", kind: "Sandbox", version: "v1beta1",
		path: p("spec", "operatingMode"), value: "Paused", wantField: "spec.operatingMode", wantDetail: unsupported}
	c["SandboxTemplate/v1beta1 volumeClaimTemplatesPolicy outside the enum"] = corpusEntry{rule: "SandboxTemplate/v1beta1 .spec.volumeClaimTemplatesPolicy enum",
		kind: "SandboxTemplate", version: "v1beta1",
		path: p("spec", "volumeClaimTemplatesPolicy"), value: "Sometimes", wantField: "spec.volumeClaimTemplatesPolicy", wantDetail: unsupported}
	c["SandboxClaim/v1beta1 without warmPoolRef"] = corpusEntry{rule: "SandboxClaim/v1beta1 .spec.warmPoolRef required", kind: "SandboxClaim", version: "v1beta1",
		path: p("spec", "warmPoolRef"), wantField: "spec.warmPoolRef", wantDetail: required}
	c["SandboxClaim/v1beta1 without warmPoolRef.name"] = corpusEntry{rule: "SandboxClaim/v1beta1 .spec.warmPoolRef.name required", kind: "SandboxClaim", version: "v1beta1",
		path: p("spec", "warmPoolRef", "name"), wantField: "spec.warmPoolRef.name", wantDetail: required}
	c["SandboxClaim/v1beta1 volumeClaimTemplate without spec"] = corpusEntry{rule: "SandboxClaim/v1beta1 .spec.volumeClaimTemplates[*].spec required",
		kind: "SandboxClaim", version: "v1beta1",
		path: p("spec", "volumeClaimTemplates"), value: []any{map[string]any{"metadata": map[string]any{"name": "data"}}},
		wantField: "spec.volumeClaimTemplates[0].spec", wantDetail: required}
	c["SandboxWarmPool/v1beta1 negative status.observedGeneration"] = corpusEntry{rule: "SandboxWarmPool/v1beta1 .status.observedGeneration minimum",
		kind: "SandboxWarmPool", version: "v1beta1", status: true,
		path: p("status", "observedGeneration"), value: int64(-1), wantField: "status.observedGeneration", wantDetail: nonNegative}

	// What only v1alpha1 has.
	c["Sandbox/v1alpha1 negative replicas"] = corpusEntry{rule: "Sandbox/v1alpha1 .spec.replicas minimum", kind: "Sandbox", version: "v1alpha1",
		path: p("spec", "replicas"), value: int64(-1), wantField: "spec.replicas", wantDetail: nonNegative}
	c["Sandbox/v1alpha1 two replicas"] = corpusEntry{rule: "Sandbox/v1alpha1 .spec.replicas maximum", kind: "Sandbox", version: "v1alpha1",
		path: p("spec", "replicas"), value: int64(2), wantField: "spec.replicas", wantDetail: "less than or equal to 1"}
	c["Sandbox/v1alpha1 negative status.replicas"] = corpusEntry{rule: "Sandbox/v1alpha1 .status.replicas minimum", kind: "Sandbox", version: "v1alpha1",
		status: true, path: p("status", "replicas"), value: int64(-1), wantField: "status.replicas", wantDetail: nonNegative}
	c["SandboxClaim/v1alpha1 without sandboxTemplateRef"] = corpusEntry{rule: "SandboxClaim/v1alpha1 .spec.sandboxTemplateRef required",
		kind: "SandboxClaim", version: "v1alpha1",
		path: p("spec", "sandboxTemplateRef"), wantField: "spec.sandboxTemplateRef", wantDetail: required}
	c["SandboxClaim/v1alpha1 without sandboxTemplateRef.name"] = corpusEntry{rule: "SandboxClaim/v1alpha1 .spec.sandboxTemplateRef.name required",
		kind: "SandboxClaim", version: "v1alpha1",
		path: p("spec", "sandboxTemplateRef", "name"), wantField: "spec.sandboxTemplateRef.name", wantDetail: required}
	c["SandboxWarmPool/v1alpha1 without replicas"] = corpusEntry{rule: "SandboxWarmPool/v1alpha1 .spec.replicas required", kind: "SandboxWarmPool", version: "v1alpha1",
		path: p("spec", "replicas"), wantField: "spec.replicas", wantDetail: required}

	// Kubernetes-embedded rules a user meets first (the sweep skips them).
	c["Sandbox/v1beta1 pod template without containers"] = corpusEntry{rule: "Sandbox/v1beta1 .spec.podTemplate.spec.containers required",
		kind: "Sandbox", version: "v1beta1",
		path: p("spec", "podTemplate", "spec", "containers"), wantField: "spec.podTemplate.spec.containers", wantDetail: required}
	c["Sandbox/v1beta1 container without a name"] = corpusEntry{rule: "Sandbox/v1beta1 .spec.podTemplate.spec.containers[*].name required",
		kind: "Sandbox", version: "v1beta1",
		path: p("spec", "podTemplate", "spec", "containers"), value: []any{map[string]any{"image": "python:3.13"}},
		wantField: "spec.podTemplate.spec.containers[0].name", wantDetail: required}
	c["Sandbox/v1beta1 malformed resource quantity"] = corpusEntry{rule: "Sandbox/v1beta1 .spec.podTemplate.spec.containers[*].resources.limits{*} pattern",
		kind: "Sandbox", version: "v1beta1",
		path: p("spec", "podTemplate", "spec", "containers"), value: []any{map[string]any{"name": "agent", "image": "python:3.13",
			"resources": map[string]any{"limits": map[string]any{"cpu": "lots"}}}},
		wantField: "spec.podTemplate.spec.containers[0].resources.limits.cpu", wantDetail: ""}

	// The API server's own metadata checks.
	c["Sandbox/v1beta1 name longer than 253 characters"] = corpusEntry{kind: "Sandbox", version: "v1beta1",
		name: strings.Repeat("a", 254), wantField: "metadata.name", wantDetail: "253"}
	c["Sandbox/v1beta1 name not a DNS subdomain"] = corpusEntry{kind: "Sandbox", version: "v1beta1",
		name: "Not_A_Name", wantField: "metadata.name", wantDetail: "RFC 1123"}
	return c
}

// coveredElsewhere maps rules whose violation needs more than one write
// to the test that proves them.
var coveredElsewhere = map[string]string{
	"Sandbox/v1beta1 .spec cel": "TestVolumeClaimTemplatesAreImmutable",
}

// TestCorpusCoversEveryRule fails when the CRDs have a rule on one of the
// project's own fields that no corpus entry breaks (add one to
// schemaCorpus when adding a marker), or when an entry names a rule the
// CRDs no longer have. Needs no control plane.
func TestCorpusCoversEveryRule(t *testing.T) {
	rules := map[string]bool{}
	for _, r := range crdRules(t) {
		rules[r.id()] = true
		if r.embedded() || r.keyword == "type" {
			continue // swept by TestEmbeddedSchemasRejectBadInput
		}
		if _, ok := coveredElsewhere[r.id()]; ok {
			continue
		}
		covered := false
		for _, e := range schemaCorpus() {
			covered = covered || e.rule == r.id()
		}
		if !covered {
			t.Errorf("rule %q has no entry in schemaCorpus", r.id())
		}
	}
	var stale []string
	for name, e := range schemaCorpus() {
		if e.rule != "" && !rules[e.rule] {
			stale = append(stale, name+": "+e.rule)
		}
	}
	for id := range coveredElsewhere {
		if !rules[id] {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, s := range stale {
		t.Errorf("corpus entry for a rule the CRDs do not have: %s", s)
	}
}

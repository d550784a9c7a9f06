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

package conversion

import (
	"encoding/json"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// The reviews the API server sends most: while v1alpha1 is served, its
// v1alpha1 watch cache converts every stored (v1beta1) change of every
// object, one review per write, and a claim costs about three Sandbox
// writes and two claim writes. Most of a Sandbox or claim is the same JSON
// in both versions (metadata with its managedFields, the pod and volume
// claim templates, lifecycle, env), and decoding it into Go types and
// encoding it again (PodSpec, ObjectMeta, every timestamp), on top of
// encoding/json scanning the review several times, was most of the
// webhook's CPU. The fast path copies those parts as bytes and writes only
// what differs. It takes the common case and hands everything else to the
// typed path, which stays the definition: an object with saved v1alpha1
// state (written through v1alpha1), keys or values with escapes, repeated
// keys, keys equal to a field name only up to case, templates and pools,
// conversions to v1beta1. Tests hold its output to the typed path's.

// fastFromHub converts one kind from its v1beta1 JSON to v1alpha1.
type fastFromHub struct {
	hubAPIVersion, spokeAPIVersion, kind string
	// stateAnnotation holds a v1alpha1 object's saved form: an object
	// carrying it goes to the typed path, which restores from it.
	stateAnnotation string
	// specAndStatus appends the spoke's spec and status members (spec
	// and status are the hub's, empty when absent or null).
	specAndStatus func(out, spec, status []byte) ([]byte, bool)
}

var fastFromHubKinds = []fastFromHub{
	{agentsv1beta1.GroupName + "/" + hubVersion, agentsv1alpha1.GroupName + "/" + spokeVersion, agentsv1beta1.SandboxKind,
		agentsv1beta1.SandboxStateAnnotation, sandboxFromHubFast},
	{extv1beta1.GroupName + "/" + hubVersion, extv1alpha1.GroupName + "/" + spokeVersion, extv1beta1.SandboxClaimKind,
		extv1beta1.SandboxClaimStateAnnotation, claimFromHubFast},
}

// handleReviewFast answers a valid (json.Valid) review whose every object
// the fast path converts; ok is false otherwise, and HandleReview then
// answers it the typed way, errors and all.
func handleReviewFast(body []byte) (resp []byte, ok bool) {
	var top [4][]byte // apiVersion, kind, request, response
	if !readFields(body[skipSpace(body, 0):], []string{"apiVersion", "kind", "request", "response"}, top[:]) ||
		!ignorableResponse(top[3]) {
		return nil, false
	}
	apiVersion, _ := plainString(top[0])
	if kind, _ := plainString(top[1]); kind != "ConversionReview" ||
		(apiVersion != "apiextensions.k8s.io/v1" && apiVersion != "apiextensions.k8s.io/v1beta1") {
		return nil, false
	}
	var req [3][]byte // uid, desiredAPIVersion, objects
	if len(top[2]) == 0 || !readFields(top[2], []string{"uid", "desiredAPIVersion", "objects"}, req[:]) {
		return nil, false
	}
	// A uid or desiredAPIVersion that is not a plain string (a number,
	// an array, escapes) is left to encoding/json, which refuses what
	// is not a string.
	uid, okUID := plainString(req[0])
	desired, okDesired := plainString(req[1])
	if (req[0] != nil && !okUID) || (len(req[1]) > 0 && !okDesired) {
		return nil, false
	}
	var objects [][]byte
	if len(req[2]) > 0 && !elements(req[2], 0, func(obj []byte) bool {
		out, ok := objectFromHubFast(obj, desired)
		objects = append(objects, out)
		return ok
	}) {
		return nil, false
	}
	// What marshalReview writes for a success, without json.Marshal:
	// apiVersion and uid are JSON strings' contents without escapes.
	size := len(apiVersion) + len(uid) + 128
	for _, o := range objects {
		size += len(o) + 1
	}
	resp = make([]byte, 0, size)
	resp = append(resp, `{"kind":"ConversionReview","apiVersion":"`...)
	resp = append(resp, apiVersion...)
	resp = append(resp, `","response":{"uid":"`...)
	resp = append(resp, uid...)
	resp = append(resp, `","result":{"metadata":{},"status":"Success"},"convertedObjects":[`...)
	for i, o := range objects {
		if i > 0 {
			resp = append(resp, ',')
		}
		resp = append(resp, o...)
	}
	return append(resp, "]}}"...), true
}

// apiServersEmptyResponse is the response kube-apiserver puts in every
// review for the webhook to fill, as it encodes it.
const apiServersEmptyResponse = `{"uid":"","convertedObjects":null,"result":{"metadata":{}}}`

// ignorableResponse reports whether a request's response member (nil when
// absent) is one the typed path ignores: any that decodes. The API server
// sends one in every review (apiServersEmptyResponse, recognised by its
// bytes; any other is decoded); a response that does not decode makes the
// typed path refuse the review, and the fast path leaves it to it.
func ignorableResponse(response []byte) bool {
	if len(response) == 0 || string(response) == apiServersEmptyResponse {
		return true
	}
	var r *apiextensionsv1.ConversionResponse
	return json.Unmarshal(response, &r) == nil
}

// objectFromHubFast converts one object (valid JSON) from v1beta1 to
// desired as the typed path does; ok is false for anything it leaves to
// the typed path.
func objectFromHubFast(obj []byte, desired string) (out []byte, ok bool) {
	var parts [5][]byte // apiVersion, kind, metadata, spec, status
	if !readFields(obj, []string{"apiVersion", "kind", "metadata", "spec", "status"}, parts[:]) {
		return nil, false
	}
	apiVersion, _ := plainString(parts[0])
	kind, _ := plainString(parts[1])
	metadata := parts[2]
	var c *fastFromHub
	for i := range fastFromHubKinds {
		if k := &fastFromHubKinds[i]; k.hubAPIVersion == apiVersion && k.kind == kind && k.spokeAPIVersion == desired {
			c = k
		}
	}
	if c == nil || savedState(metadata, c.stateAnnotation) {
		return nil, false
	}
	out = make([]byte, 0, len(obj)+64)
	out = append(out, `{"apiVersion":"`...)
	out = append(out, c.spokeAPIVersion...)
	out = append(out, `","kind":"`...)
	out = append(out, c.kind...)
	out = append(out, '"')
	if len(metadata) > 0 {
		out = append(append(out, `,"metadata":`...), metadata...)
	}
	if out, ok = c.specAndStatus(out, parts[3], parts[4]); !ok {
		return nil, false
	}
	return append(out, '}'), true
}

// sandboxFromHubFast writes a Sandbox's spec and status as SandboxFromHub
// does: operatingMode becomes replicas (in spec and status), nodeName is
// dropped, the rest is copied.
func sandboxFromHubFast(out, specObj, statusObj []byte) ([]byte, bool) {
	spec := make([][]byte, len(sandboxSpecKeys))
	status := make([][]byte, len(sandboxStatusKeys))
	if (len(specObj) > 0 && !readFields(specObj, sandboxSpecKeys, spec)) ||
		(len(statusObj) > 0 && !readFields(statusObj, sandboxStatusKeys, status)) {
		return nil, false
	}
	suspended := false
	if mode := spec[0]; len(mode) > 0 { // operatingMode
		m, ok := plainString(mode)
		if !ok {
			return nil, false
		}
		suspended = m == string(agentsv1beta1.SandboxOperatingModeSuspended)
	}
	replicas := []byte("1")
	if suspended {
		replicas = []byte("0")
	}
	out = append(out, `,"spec":{`...)
	out = appendMembers(out, sandboxSpecKeys[1:], spec[1:])
	out = appendMember(out, "replicas", replicas)
	out = append(out, '}')
	var extra []byte
	if !suspended { // omitempty, as the typed status writes it
		extra = replicas
	}
	return appendStatus(out, sandboxStatusKeys[:5], status[:5], "replicas", extra), true // not nodeName
}

// sandboxSpecKeys: operatingMode (v1beta1 only, read for replicas), then
// the fields v1alpha1 has with the same JSON shape.
var sandboxSpecKeys = []string{"operatingMode", "podTemplate", "volumeClaimTemplates", "shutdownTime", "shutdownPolicy", "service"}

// sandboxStatusKeys: the status fields both versions share, then nodeName
// (v1beta1 only, dropped; named so a case variant of it is left to the
// typed path too).
var sandboxStatusKeys = []string{"serviceFQDN", "service", "conditions", "selector", "podIPs", "nodeName"}

// claimFromHubFast writes a claim's spec and status as SandboxClaimFromHub
// does for a claim without saved state: the pool names the template (a
// shadow pool the template it shadows, with the default policy; any other
// pool the template of its name and itself as the policy);
// volumeClaimTemplates has no v1alpha1 form; the rest is copied.
func claimFromHubFast(out, specObj, statusObj []byte) ([]byte, bool) {
	spec := make([][]byte, len(claimSpecKeys))
	status := make([][]byte, len(claimStatusKeys))
	if (len(specObj) > 0 && !readFields(specObj, claimSpecKeys, spec)) ||
		(len(statusObj) > 0 && !readFields(statusObj, claimStatusKeys, status)) {
		return nil, false
	}
	var pool string
	if ref := spec[0]; len(ref) > 0 { // warmPoolRef
		var name [1][]byte
		if !readFields(ref, []string{"name"}, name[:]) {
			return nil, false
		}
		if len(name[0]) > 0 {
			var ok bool
			if pool, ok = plainString(name[0]); !ok {
				return nil, false
			}
		}
	}
	template, policy := pool, pool
	if t, shadow := strings.CutPrefix(pool, extv1beta1.ShadowPoolPrefix); shadow {
		template, policy = t, string(extv1alpha1.WarmPoolPolicyDefault)
	}
	// The typed encoder writes these two structs even when empty.
	out = append(out, `,"spec":{"sandboxTemplateRef":{`...)
	if template != "" {
		out = append(out, `"name":"`...)
		out = append(out, template...) // a JSON string's contents without escapes
		out = append(out, '"')
	}
	out = append(out, `},"warmpool":"`...)
	out = append(out, policy...)
	out = append(out, '"')
	if len(spec[2]) == 0 {
		spec[2] = []byte("{}") // additionalPodMetadata
	}
	out = appendMembers(out, claimSpecKeys[1:4], spec[1:4]) // not volumeClaimTemplates
	out = append(out, '}')
	return appendStatus(out, claimStatusKeys, status, "", nil), true
}

// claimSpecKeys: warmPoolRef (read for the template and policy), the
// fields both versions share, then volumeClaimTemplates (v1beta1 only).
var claimSpecKeys = []string{"warmPoolRef", "lifecycle", "additionalPodMetadata", "env", "volumeClaimTemplates"}

// claimStatusKeys: the status fields both versions share.
var claimStatusKeys = []string{"conditions", "sandbox"}

// appendStatus appends a status of the set values and, when extra is
// not nil, extraKey; none at all is left out, as omitzero does.
func appendStatus(out []byte, names []string, values [][]byte, extraKey string, extra []byte) []byte {
	at := len(out)
	out = append(out, `,"status":{`...)
	out = appendMembers(out, names, values)
	if extra != nil {
		out = appendMember(out, extraKey, extra)
	}
	if out[len(out)-1] == '{' {
		return out[:at]
	}
	return append(out, '}')
}

// savedState reports whether metadata (valid JSON; empty for none) carries
// the saved v1alpha1 state in annotation key, or might: an annotation key
// with escapes counts, and so does metadata or annotations that are not
// objects.
func savedState(metadata []byte, key string) bool {
	if len(metadata) == 0 {
		return false
	}
	var annotations [1][]byte
	if !readFields(metadata, []string{"annotations"}, annotations[:]) {
		return true
	}
	if len(annotations[0]) == 0 {
		return false
	}
	found := false
	ok := members(annotations[0], 0, func(k, _ []byte) bool {
		found = !plainKey(k) || string(k) == key
		return !found
	})
	return found || !ok
}

// appendMembers appends "names[i]":values[i] for each value that is set.
func appendMembers(out []byte, names []string, values [][]byte) []byte {
	for i, v := range values {
		if len(v) > 0 {
			out = appendMember(out, names[i], v)
		}
	}
	return out
}

// appendMember appends "key":value, after a comma unless it is the
// object's first member.
func appendMember(out []byte, key string, value []byte) []byte {
	if out[len(out)-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, key...)
	out = append(out, `":`...)
	return append(out, value...)
}

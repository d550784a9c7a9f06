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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// The review the API server sends most: while v1alpha1 is served, its
// v1alpha1 watch cache converts every stored (v1beta1) change of every
// object, one review per write. For a Sandbox, almost all of the object is
// the same JSON in both versions (metadata with its managedFields, the pod
// and volume claim templates), and decoding it into Go types and encoding
// it again (PodSpec, ObjectMeta, every timestamp), on top of
// encoding/json scanning the review several times, was most of the
// webhook's CPU. The fast path copies those parts as bytes and writes only
// what differs. It takes the common case and hands everything else to the
// typed path, which stays the definition: a Sandbox with saved v1alpha1
// state (written through v1alpha1), keys or values with escapes, repeated
// keys, any other kind or direction. Tests hold its output to the typed
// path's.

var (
	sandboxHubAPIVersion   = agentsv1beta1.GroupName + "/" + hubVersion
	sandboxSpokeAPIVersion = agentsv1alpha1.GroupName + "/" + spokeVersion
)

// handleReviewFast answers a valid (json.Valid) review whose every object
// the fast path converts; ok is false otherwise, and HandleReview then
// answers it the typed way, errors and all.
func handleReviewFast(body []byte) (resp []byte, ok bool) {
	var top [3][]byte // apiVersion, kind, request
	if !readFields(body[skipSpace(body, 0):], []string{"apiVersion", "kind", "request"}, top[:]) {
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
	uid, okUID := plainString(req[0])
	desired, _ := plainString(req[1])
	if (req[0] != nil && !okUID) || desired != sandboxSpokeAPIVersion {
		return nil, false
	}
	objects := []runtime.RawExtension{}
	if len(req[2]) > 0 && !elements(req[2], 0, func(obj []byte) bool {
		out, ok := sandboxFromHubFast(obj)
		objects = append(objects, runtime.RawExtension{Raw: out})
		return ok
	}) {
		return nil, false
	}
	b, err := marshalReview(review{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "ConversionReview"},
		Response: &apiextensionsv1.ConversionResponse{UID: types.UID(uid), ConvertedObjects: objects,
			Result: metav1.Status{Status: metav1.StatusSuccess}},
	})
	return b, err == nil
}

// sandboxFromHubFast converts one v1beta1 Sandbox (valid JSON) to
// v1alpha1 as SandboxFromHub does; ok is false for anything it leaves to
// the typed path.
func sandboxFromHubFast(obj []byte) (out []byte, ok bool) {
	var parts [5][]byte // apiVersion, kind, metadata, spec, status
	if !readFields(obj, []string{"apiVersion", "kind", "metadata", "spec", "status"}, parts[:]) {
		return nil, false
	}
	apiVersion, _ := plainString(parts[0])
	kind, _ := plainString(parts[1])
	metadata, specObj, statusObj := parts[2], parts[3], parts[4]
	if apiVersion != sandboxHubAPIVersion || kind != agentsv1beta1.SandboxKind || savedState(metadata) {
		return nil, false
	}
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

	out = make([]byte, 0, len(obj)+32)
	out = append(out, `{"apiVersion":"`+sandboxSpokeAPIVersion+`","kind":"`+agentsv1beta1.SandboxKind+`"`...)
	if len(metadata) > 0 {
		out = append(append(out, `,"metadata":`...), metadata...)
	}
	out = append(out, `,"spec":{`...)
	out = appendMembers(out, sandboxSpecKeys[1:], spec[1:])
	out = appendMember(out, "replicas", replicas)
	out = append(out, '}')
	statusAt := len(out)
	out = append(out, `,"status":{`...)
	out = appendMembers(out, sandboxStatusKeys[:5], status[:5]) // not nodeName
	if !suspended {                                             // omitempty, as the typed status writes it
		out = appendMember(out, "replicas", replicas)
	}
	if out[len(out)-1] == '{' {
		out = out[:statusAt] // an empty status is left out, as omitzero does
	} else {
		out = append(out, '}')
	}
	return append(out, '}'), true
}

// sandboxSpecKeys: operatingMode (v1beta1 only, read for replicas), then
// the fields v1alpha1 has with the same JSON shape.
var sandboxSpecKeys = []string{"operatingMode", "podTemplate", "volumeClaimTemplates", "shutdownTime", "shutdownPolicy", "service"}

// sandboxStatusKeys: the status fields both versions share, then nodeName
// (v1beta1 only, dropped; named so a case variant of it is left to the
// typed path too).
var sandboxStatusKeys = []string{"serviceFQDN", "service", "conditions", "selector", "podIPs", "nodeName"}

// savedState reports whether metadata (valid JSON; empty for none) carries
// the Sandbox's saved v1alpha1 state, or might: an annotation key with
// escapes counts, and so does metadata or annotations that are not
// objects.
func savedState(metadata []byte) bool {
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
	ok := members(annotations[0], 0, func(key, _ []byte) bool {
		found = !plainKey(key) || string(key) == agentsv1beta1.SandboxStateAnnotation
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

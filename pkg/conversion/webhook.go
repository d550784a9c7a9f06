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
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// converter turns one object's JSON into the other version.
type converter struct {
	toHub, fromHub func([]byte) (any, error)
}

func via[S, H any](toHub func(*S) (*H, error), fromHub func(*H) (*S, error)) converter {
	return converter{
		toHub: func(b []byte) (any, error) {
			in := new(S)
			if err := json.Unmarshal(b, in); err != nil {
				return nil, err
			}
			return toHub(in)
		},
		fromHub: func(b []byte) (any, error) {
			in := new(H)
			if err := json.Unmarshal(b, in); err != nil {
				return nil, err
			}
			return fromHub(in)
		},
	}
}

// converters by group and kind; each converts between the group's
// v1alpha1 (spoke) and v1beta1 (hub).
var converters = map[schema.GroupKind]converter{
	{Group: agentsv1beta1.GroupName, Kind: agentsv1beta1.SandboxKind}:   via(SandboxToHub, SandboxFromHub),
	{Group: extv1beta1.GroupName, Kind: extv1beta1.SandboxClaimKind}:    via(SandboxClaimToHub, SandboxClaimFromHub),
	{Group: extv1beta1.GroupName, Kind: extv1beta1.SandboxTemplateKind}: via(SandboxTemplateToHub, SandboxTemplateFromHub),
	{Group: extv1beta1.GroupName, Kind: extv1beta1.SandboxWarmPoolKind}: via(SandboxWarmPoolToHub, SandboxWarmPoolFromHub),
}

const (
	hubVersion   = "v1beta1"
	spokeVersion = "v1alpha1"
)

// Convert converts one object (JSON) to desiredAPIVersion, refusing kinds
// and versions it does not know by name.
func Convert(raw []byte, desiredAPIVersion string) ([]byte, error) {
	tm, err := typeMetaOf(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	from, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("object apiVersion %q: %w", tm.APIVersion, err)
	}
	to, err := schema.ParseGroupVersion(desiredAPIVersion)
	if err != nil {
		return nil, fmt.Errorf("desiredAPIVersion %q: %w", desiredAPIVersion, err)
	}
	gk := schema.GroupKind{Group: from.Group, Kind: tm.Kind}
	conv, ok := converters[gk]
	if !ok {
		return nil, fmt.Errorf("unsupported kind %q in group %q", tm.Kind, from.Group)
	}
	if to.Group != from.Group {
		return nil, fmt.Errorf("cannot convert %s from group %q to group %q", tm.Kind, from.Group, to.Group)
	}
	for _, v := range []string{from.Version, to.Version} {
		if v != hubVersion && v != spokeVersion {
			return nil, fmt.Errorf("unsupported version %q of %s (served: %s, %s)", v, gk, hubVersion, spokeVersion)
		}
	}
	var out any
	switch {
	case from.Version == to.Version:
		return raw, nil
	case to.Version == hubVersion:
		out, err = conv.toHub(raw)
	default:
		out, err = conv.fromHub(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("converting %s %s to %s: %w", tm.Kind, from.Version, to.Version, err)
	}
	return json.Marshal(out)
}

// review is the part of a ConversionReview the handler reads and writes;
// apiextensions.k8s.io v1 and v1beta1 share this shape.
type review struct {
	metav1.TypeMeta `json:",inline"`
	Request         *apiextensionsv1.ConversionRequest  `json:"request,omitempty"`
	Response        *apiextensionsv1.ConversionResponse `json:"response,omitempty"`
}

// HandleReview answers one ConversionReview body; status is the HTTP
// status (200 unless the review itself is unusable) and msg its reason.
// The reviews the API server sends most (v1beta1 Sandboxes to v1alpha1)
// take the fast path (fastpath.go); the rest, and every error, the typed
// one.
func HandleReview(body []byte) (resp []byte, status int, msg string) {
	if json.Valid(body) {
		if resp, ok := handleReviewFast(body); ok {
			fastReviews.Inc()
			return resp, http.StatusOK, ""
		}
	}
	typedReviews.Inc()
	return handleReviewTyped(body)
}

// handleReviewTyped answers any review by decoding it and each object
// into their Go types (Convert).
func handleReviewTyped(body []byte) (resp []byte, status int, msg string) {
	var in review
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, http.StatusBadRequest, "malformed ConversionReview: " + err.Error()
	}
	if in.Kind != "ConversionReview" || (in.APIVersion != "apiextensions.k8s.io/v1" && in.APIVersion != "apiextensions.k8s.io/v1beta1") {
		return nil, http.StatusBadRequest, fmt.Sprintf("expected an apiextensions.k8s.io/v1 or v1beta1 ConversionReview, got %s %s", in.APIVersion, in.Kind)
	}
	if in.Request == nil {
		return nil, http.StatusBadRequest, "ConversionReview has no request"
	}
	out := review{TypeMeta: in.TypeMeta, Response: &apiextensionsv1.ConversionResponse{UID: in.Request.UID}}
	converted := make([]runtime.RawExtension, 0, len(in.Request.Objects))
	for i, obj := range in.Request.Objects {
		b, err := Convert(obj.Raw, in.Request.DesiredAPIVersion)
		if err != nil {
			out.Response.Result = metav1.Status{Status: metav1.StatusFailure, Message: fmt.Sprintf("object %d: %v", i, err)}
			converted = nil
			break
		}
		converted = append(converted, runtime.RawExtension{Raw: b})
	}
	if converted != nil {
		out.Response.ConvertedObjects = converted
		out.Response.Result = metav1.Status{Status: metav1.StatusSuccess}
	}
	b, err := marshalReview(out)
	if err != nil {
		return nil, http.StatusInternalServerError, err.Error()
	}
	return b, http.StatusOK, ""
}

// typeMetaOf reads an object's apiVersion and kind, stopping as soon as
// it has both: the API server writes them first (its JSON has sorted
// keys), so the metadata, spec and status are not scanned a second time
// only to be skipped. The decode into the typed object that follows
// reads (and checks) the whole object.
func typeMetaOf(raw []byte) (metav1.TypeMeta, error) {
	var tm metav1.TypeMeta
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return tm, fmt.Errorf("not a JSON object")
	}
	var haveVersion, haveKind bool
	for dec.More() && (!haveVersion || !haveKind) {
		tok, err := dec.Token()
		if err != nil {
			return tm, err
		}
		switch tok {
		case "apiVersion":
			err, haveVersion = dec.Decode(&tm.APIVersion), true
		case "kind":
			err, haveKind = dec.Decode(&tm.Kind), true
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return tm, err
		}
	}
	return tm, nil
}

// marshalReview writes the review with its converted objects spliced in
// as they are: they are JSON this package marshalled (or the request's
// own, already parsed), and json.Marshal would scan each again to
// compact it. A review without converted objects (a failure) has no
// convertedObjects key.
func marshalReview(r review) ([]byte, error) {
	head := struct {
		metav1.TypeMeta `json:",inline"`
		Response        struct {
			UID    types.UID     `json:"uid"`
			Result metav1.Status `json:"result"`
		} `json:"response"`
	}{TypeMeta: r.TypeMeta}
	head.Response.UID, head.Response.Result = r.Response.UID, r.Response.Result
	b, err := json.Marshal(head)
	objects := r.Response.ConvertedObjects
	if err != nil || objects == nil {
		return b, err
	}
	// b ends with the response's and the review's closing braces.
	size := len(b) + len(`,"convertedObjects":[]`)
	for _, o := range objects {
		size += len(o.Raw) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, b[:len(b)-2]...)
	out = append(out, `,"convertedObjects":[`...)
	for i, o := range objects {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, o.Raw...)
	}
	return append(out, "]}}"...), nil
}

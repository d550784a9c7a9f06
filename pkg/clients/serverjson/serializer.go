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

// Package serverjson decodes custom resources as the API server writes
// them, with fewer passes over the bytes than apimachinery's JSON
// serializer makes. Custom resources have no protobuf, so every watch
// event and every write response of a Sandbox, claim or pool reaches the
// controller as JSON, and the stock path reads each event's bytes about
// ten times to build the object once: twice to cut the frame from the
// stream (encoding/json's scanner), twice for the envelope's apiVersion
// and kind (encoding/json), twice for the envelope's validation and
// decode, twice for the object's apiVersion and kind, and twice for the
// object's validation and decode.
//
// The API server writes both shapes in one fixed form: an object starts
// with its apiVersion and kind ({"apiVersion":"…","kind":"…", for a
// custom resource, whose keys it sorts; {"kind":"…","apiVersion":"…",
// for a typed object such as a Status), and a watch event is exactly
// {"type":"…","object":…}, one JSON object after another. Data in that
// form is read by position: a frame's end by counting brackets outside
// strings (Framer), the type meta from the first two members, the
// event's object as the bytes between its envelope's members. The object itself is still validated
// and decoded in full by the stock decoder, so anything malformed inside
// it fails as before. Data in any other form goes to the stock serializer
// unchanged.
package serverjson

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// NegotiatedSerializer returns base with its JSON serializers and framer
// replaced by ones that read the API server's form by position (see the
// package comment); every other media type, the encoders and the version
// handling are base's. scheme is the one base was built from.
func NegotiatedSerializer(base runtime.NegotiatedSerializer, scheme *runtime.Scheme) runtime.NegotiatedSerializer {
	infos := append([]runtime.SerializerInfo(nil), base.SupportedMediaTypes()...)
	for i := range infos {
		if infos[i].MediaType != runtime.ContentTypeJSON {
			continue
		}
		objects := json.NewSerializerWithOptions(MetaFactory, scheme, scheme, json.SerializerOptions{})
		infos[i].Serializer = objects
		if infos[i].StreamSerializer != nil {
			stream := *infos[i].StreamSerializer
			stream.Serializer = newWatchEventSerializer(objects, scheme)
			stream.Framer = Framer
			infos[i].StreamSerializer = &stream
		}
	}
	return negotiated{NegotiatedSerializer: base, infos: infos}
}

type negotiated struct {
	runtime.NegotiatedSerializer
	infos []runtime.SerializerInfo
}

func (n negotiated) SupportedMediaTypes() []runtime.SerializerInfo { return n.infos }

// watchEventSerializer decodes a watch stream's frames into
// metav1.WatchEvent by position when they are in the API server's form
// (see SplitWatchEvent), and everything else through the serializer it
// wraps, which also encodes.
type watchEventSerializer struct {
	runtime.Serializer
	// eventKind is what the wrapped serializer reports for a decoded
	// WatchEvent: the envelope names no kind, so it is the first the
	// scheme registers WatchEvent under.
	eventKind schema.GroupVersionKind
}

func newWatchEventSerializer(s runtime.Serializer, scheme *runtime.Scheme) runtime.Serializer {
	kinds, _, err := scheme.ObjectKinds(&metav1.WatchEvent{})
	if err != nil || len(kinds) == 0 {
		// A scheme without meta/v1's kinds: nothing to mirror, so no
		// fast path.
		return s
	}
	return watchEventSerializer{Serializer: s, eventKind: kinds[0]}
}

func (s watchEventSerializer) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if ev, ok := into.(*metav1.WatchEvent); ok && defaults == nil {
		if eventType, object, ok := SplitWatchEvent(data); ok {
			ev.Type = eventType
			// The stream decoder reuses data's buffer for the next frame.
			ev.Object = runtime.RawExtension{Raw: append([]byte(nil), object...)}
			kind := s.eventKind
			return ev, &kind, nil
		}
	}
	return s.Serializer.Decode(data, defaults, into)
}

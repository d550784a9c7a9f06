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

package serverjson

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	restclientwatch "k8s.io/client-go/rest/watch"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

type event struct {
	Type   watch.EventType
	Object runtime.Object
}

// decodeWatch reads a JSON watch stream as client-go's REST client does,
// through the serializer info's framer, stream serializer and object
// decoder.
func decodeWatch(t *testing.T, info runtime.SerializerInfo, stream []byte) ([]event, error) {
	t.Helper()
	frames := info.StreamSerializer.Framer.NewFrameReader(io.NopCloser(bytes.NewReader(stream)))
	objects := scheme.Codecs.WithoutConversion().DecoderToVersion(info.Serializer, nil)
	dec := restclientwatch.NewDecoder(streaming.NewDecoder(frames, info.StreamSerializer.Serializer), objects)
	var events []event
	for {
		typ, obj, err := dec.Decode()
		if errors.Is(err, io.EOF) {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, event{typ, obj})
	}
}

func TestWatchStreamDecodesAsStock(t *testing.T) {
	sb := pooledSandbox()
	claimed := sb.DeepCopy()
	claimed.Labels = map[string]string{"agents.x-k8s.io/claim-uid": "b1"}
	claimed.ResourceVersion = "48214"
	var stream bytes.Buffer
	stream.Write(watchFrame("ADDED", asServerWrites(t, sb)))
	stream.Write(watchFrame("MODIFIED", asServerWrites(t, claimed)))
	// Frames the positional read does not take go to the stock decoder
	// in the same stream.
	stream.WriteString(`{"object":` + string(asServerWrites(t, claimed)) + `,"type":"MODIFIED"}` + "\n")
	stream.WriteString(`{"type":"BOOKMARK","object":{"kind":"Sandbox","apiVersion":"agents.x-k8s.io/v1beta1","metadata":{"resourceVersion":"48300","creationTimestamp":null}}}` + "\n")
	stream.Write(watchFrame("DELETED", asServerWrites(t, claimed)))
	stream.WriteString(`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version","reason":"Expired","code":410}}` + "\n")

	want, err := decodeWatch(t, stockJSON(t), stream.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeWatch(t, positionalJSON(t), stream.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("decoded %d events, want 6", len(got))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events differ from the stock decoder's (-stock +positional):\n%s", diff)
	}
	if s, ok := got[1].Object.(*agentsv1beta1.Sandbox); !ok || s.Labels["agents.x-k8s.io/claim-uid"] != "b1" {
		t.Errorf("second event decoded as %#v, want the claimed Sandbox", got[1].Object)
	}
}

// TestMalformedObjectFails: an object that is not one JSON value fails its
// decode whichever way its envelope was read, so no event is made of
// half an object.
func TestMalformedObjectFails(t *testing.T) {
	for name, frame := range map[string]string{
		"a third envelope member": `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod"},"extra":{}}`,
		"a truncated object":      `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{}}`,
		"trailing garbage":        `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod"}x}`,
	} {
		t.Run(name, func(t *testing.T) {
			if events, err := decodeWatch(t, positionalJSON(t), []byte(frame)); err == nil {
				t.Errorf("decoded %v, want an error", events)
			}
		})
	}
}

func TestResponsesDecodeAsStock(t *testing.T) {
	for name, tc := range map[string]struct {
		data []byte
		into runtime.Object
	}{
		"a Sandbox":                {asServerWrites(t, pooledSandbox()), &agentsv1beta1.Sandbox{}},
		"a Status (an error body)": {[]byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"Conflict","code":409}`), &metav1.Status{}},
		"a list (kind third)":      {[]byte(`{"apiVersion":"agents.x-k8s.io/v1beta1","items":[],"kind":"SandboxList","metadata":{"resourceVersion":"9"}}`), &agentsv1beta1.SandboxList{}},
	} {
		t.Run(name, func(t *testing.T) {
			stock := scheme.Codecs.WithoutConversion().DecoderToVersion(stockJSON(t).Serializer, nil)
			positional := scheme.Codecs.WithoutConversion().DecoderToVersion(positionalJSON(t).Serializer, nil)
			want, err := runtime.Decode(stock, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runtime.Decode(positional, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded differently (-stock +positional):\n%s", diff)
			}
		})
	}
}

// TestOtherMediaTypesUnchanged: only the JSON entry is replaced.
func TestOtherMediaTypesUnchanged(t *testing.T) {
	base := scheme.Codecs.WithoutConversion()
	got := NegotiatedSerializer(base, scheme.Scheme).SupportedMediaTypes()
	want := base.SupportedMediaTypes()
	if len(got) != len(want) {
		t.Fatalf("%d media types, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].MediaType != want[i].MediaType {
			t.Errorf("media type %d is %s, want %s", i, got[i].MediaType, want[i].MediaType)
		}
		if want[i].MediaType != runtime.ContentTypeJSON && got[i].Serializer != want[i].Serializer {
			t.Errorf("%s: serializer replaced", want[i].MediaType)
		}
	}
	if want[0].StreamSerializer.Serializer == got[0].StreamSerializer.Serializer || got[0].StreamSerializer.Framer != Framer {
		t.Error("the JSON stream serializer or framer was not replaced")
	}
}

// BenchmarkWatchEvent decodes a stream of Sandbox watch events as
// client-go's watch does, through the stock JSON serializer and framer
// and the positional ones; ns/op is per event.
func BenchmarkWatchEvent(b *testing.B) {
	frame := watchFrame("MODIFIED", asServerWrites(b, pooledSandbox()))
	for name, info := range map[string]runtime.SerializerInfo{"stock": stockJSON(b), "positional": positionalJSON(b)} {
		b.Run(name, func(b *testing.B) {
			// A stream long enough for every iteration: b.Loop stops
			// at b.N events.
			frames := info.StreamSerializer.Framer.NewFrameReader(io.NopCloser(&endless{frame: frame}))
			objects := scheme.Codecs.WithoutConversion().DecoderToVersion(info.Serializer, nil)
			dec := restclientwatch.NewDecoder(streaming.NewDecoder(frames, info.StreamSerializer.Serializer), objects)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := dec.Decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// endless is a stream that repeats frame forever.
type endless struct {
	frame []byte
	off   int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], e.frame[e.off:])
		n += c
		e.off = (e.off + c) % len(e.frame)
	}
	return n, nil
}

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

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// MetaFactory reads an object's apiVersion and kind from its first two
// members when they are those two with plain string values, as the API
// server writes every object, without reading the rest; for any other
// data it is json.DefaultMetaFactory.
var MetaFactory json.MetaFactory = positionalMeta{}

type positionalMeta struct{}

func (positionalMeta) Interpret(data []byte) (*schema.GroupVersionKind, error) {
	if gvk, ok := LeadingTypeMeta(data); ok {
		return gvk, nil
	}
	return json.DefaultMetaFactory.Interpret(data)
}

// LeadingTypeMeta returns the group, version and kind of data when it is a
// JSON object whose first two members are "apiVersion" and "kind", in
// either order, with plain string values (printable ASCII, no escapes),
// and the apiVersion parses. For such data written by the API server,
// which never repeats a member, it is what the stock MetaFactory returns.
func LeadingTypeMeta(data []byte) (*schema.GroupVersionKind, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	i++
	var apiVersion, kind []byte
	for member := 0; member < 2; member++ {
		if member == 1 {
			i = skipSpace(data, i)
			if i >= len(data) || data[i] != ',' {
				return nil, false
			}
			i++
		}
		key, next, ok := plainString(data, skipSpace(data, i))
		if !ok {
			return nil, false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		value, next, ok := plainString(data, skipSpace(data, i+1))
		if !ok {
			return nil, false
		}
		i = next
		switch {
		case apiVersion == nil && string(key) == "apiVersion":
			apiVersion = value
		case kind == nil && string(key) == "kind":
			kind = value
		default:
			return nil, false
		}
	}
	gv, err := schema.ParseGroupVersion(string(apiVersion))
	if err != nil {
		return nil, false
	}
	return &schema.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: string(kind)}, true
}

// plainString returns the contents of the JSON string at data[i] and the
// index after it, when it holds only printable ASCII without escapes
// (so its bytes are its value); ok is false for anything else. The
// returned slice is never nil.
func plainString(data []byte, i int) (value []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j : j], j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// watchEventPrefix and watchEventObject are the API server's envelope of
// a watch event around its type and its object.
const (
	watchEventPrefix = `{"type":"`
	watchEventObject = `","object":`
)

// SplitWatchEvent returns the type and the object's bytes of a frame
// written as {"type":"<TYPE>","object":{…}} (trailing space allowed), the
// form the API server writes; ok is false for any other frame. The object
// is everything between the envelope's members: its own decode validates
// it, so an envelope with more members fails there rather than being
// read wrongly.
func SplitWatchEvent(frame []byte) (eventType string, object []byte, ok bool) {
	rest, found := bytes.CutPrefix(frame, []byte(watchEventPrefix))
	if !found {
		return "", nil, false
	}
	end := 0
	for end < len(rest) && rest[end] >= 'A' && rest[end] <= 'Z' {
		end++
	}
	if end == 0 {
		return "", nil, false
	}
	eventType = string(rest[:end])
	object, found = bytes.CutPrefix(rest[end:], []byte(watchEventObject))
	if !found {
		return "", nil, false
	}
	object = bytes.TrimRight(object, " \t\r\n")
	if len(object) < 3 || object[0] != '{' || object[len(object)-1] != '}' || object[len(object)-2] != '}' {
		return "", nil, false
	}
	return eventType, object[:len(object)-1], true
}

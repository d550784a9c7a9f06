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

package controller

import (
	"encoding/json"
	"reflect"
)

// MergePatch returns the RFC 7386 JSON merge patch that turns the JSON
// encoding of original into that of modified: changed and added fields with
// their new values, removed fields as null, lists replaced whole. ok is
// false when nothing differs, so the caller can skip the write.
//
// Custom resources do not accept strategic merge patches, and a merge patch
// carries only what changed, so it never reverts fields another writer set
// meanwhile.
func MergePatch(original, modified any) (patch []byte, ok bool, err error) {
	o, err := toJSONMap(original)
	if err != nil {
		return nil, false, err
	}
	m, err := toJSONMap(modified)
	if err != nil {
		return nil, false, err
	}
	diff := diffMaps(o, m)
	if len(diff) == 0 {
		return nil, false, nil
	}
	patch, err = json.Marshal(diff)
	return patch, err == nil, err
}

func toJSONMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if string(b) == "null" {
		return out, nil
	}
	return out, json.Unmarshal(b, &out)
}

func diffMaps(o, m map[string]any) map[string]any {
	diff := map[string]any{}
	for k, ov := range o {
		mv, present := m[k]
		if !present {
			diff[k] = nil
			continue
		}
		om, oIsMap := ov.(map[string]any)
		mm, mIsMap := mv.(map[string]any)
		if oIsMap && mIsMap {
			if d := diffMaps(om, mm); len(d) > 0 {
				diff[k] = d
			}
			continue
		}
		if !reflect.DeepEqual(ov, mv) {
			diff[k] = mv
		}
	}
	for k, mv := range m {
		if _, present := o[k]; !present {
			diff[k] = mv
		}
	}
	return diff
}

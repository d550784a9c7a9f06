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

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

// MergePatch returns the RFC 7386 JSON merge patch that turns the JSON
// encoding of original into that of modified: changed and added fields with
// their new values, removed fields as null, lists replaced whole. ok is
// false when nothing differs, so the caller can skip the write.
//
// Custom resources do not accept strategic merge patches, and a merge patch
// carries only what changed, so it never reverts fields another writer set
// meanwhile.
//
// The diff is evanphx/json-patch's CreateMergePatch, the one apimachinery's
// strategicpatch and jsonmergepatch build on (so it is in the module graph
// already); this wrapper only adds the encoding and the "nothing changed"
// answer, which CreateMergePatch gives as "{}".
func MergePatch(original, modified any) (patch []byte, ok bool, err error) {
	o, err := json.Marshal(original)
	if err != nil {
		return nil, false, err
	}
	m, err := json.Marshal(modified)
	if err != nil {
		return nil, false, err
	}
	patch, err = jsonpatch.CreateMergePatch(o, m)
	if err != nil {
		return nil, false, err
	}
	if string(patch) == "{}" {
		return nil, false, nil
	}
	return patch, true, nil
}

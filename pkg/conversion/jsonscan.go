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

import "bytes"

// A minimal reader of JSON that json.Valid has accepted: it finds the
// members of an object and the elements of an array as byte ranges,
// without decoding them. encoding/json scans every byte of a value it
// skips or copies as json.RawMessage again, several times per review; this
// reads each byte once. It never panics on any input (bounds are checked),
// but it only gives meaningful answers for valid JSON, so its callers
// check json.Valid first.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string whose opening quote is
// at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && !isSpace(b[j]) {
			j++
		}
		return j
	}
}

// members calls f with each member of the object that starts at b[i]:
// its key as written between the quotes (escapes left as they are) and
// its value. It stops early when f returns false, and reports false when
// b[i] is not an object or f stopped it.
func members(b []byte, i int, f func(key, value []byte) bool) bool {
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) && b[i] == '"' {
		end := skipString(b, i)
		if end-1 <= i {
			return false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if !f(key, b[i:vend]) {
			return false
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// elements calls f with each element of the array that starts at b[i],
// as members does for an object.
func elements(b []byte, i int, f func(value []byte) bool) bool {
	if i >= len(b) || b[i] != '[' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return true
	}
	for i < len(b) {
		end := skipValue(b, i)
		if !f(b[i:end]) {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return true
		default:
			return false
		}
	}
	return false
}

// plainString is the contents of a JSON string value without escapes;
// ok is false for anything else (a string with escapes included, which
// the callers leave to encoding/json rather than unescape here).
func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// plainKey reports whether an object key needs no unescaping, so that
// comparing its bytes compares the key.
func plainKey(key []byte) bool { return bytes.IndexByte(key, '\\') < 0 }

// readFields reads the members of the object b (valid JSON) named in names
// into vals, by index; a name that is absent, or null, is left nil. ok is
// false when b is not an object, or a member is one encoding/json could
// read differently: a key with escapes, a repeated key (it takes the
// last), or a key equal to a name only up to case (it matches field
// names case-insensitively). Other members are ignored.
func readFields(b []byte, names []string, vals [][]byte) bool {
	return members(b, 0, func(key, value []byte) bool {
		if !plainKey(key) {
			return false
		}
		for i, n := range names {
			if !bytes.EqualFold(key, []byte(n)) {
				continue
			}
			if string(key) != n || vals[i] != nil {
				return false
			}
			if string(value) == "null" {
				value = value[:0:0] // seen, and read as unset
			}
			vals[i] = value
		}
		return true
	})
}

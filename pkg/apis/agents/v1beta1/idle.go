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

package v1beta1

import (
	"fmt"
	"time"
)

// Bounds of the idle window. Below a minute the routers' one write per
// window becomes a write rate; beyond a week the knob means "never".
const (
	MinIdleTimeout = time.Minute
	MaxIdleTimeout = 7 * 24 * time.Hour
)

// ParseIdleTimeout reads the IdleTimeoutAnnotation value. The annotation
// has no schema validation, so every reader applies the same bounds.
func ParseIdleTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a duration: %w", IdleTimeoutAnnotation, s, err)
	}
	if d < MinIdleTimeout || d > MaxIdleTimeout {
		return 0, fmt.Errorf("%s %q is outside [%s, %s]", IdleTimeoutAnnotation, s, MinIdleTimeout, MaxIdleTimeout)
	}
	return d, nil
}

// IdleTimeout returns the Sandbox's idle window; ok is false when the
// annotation is absent, err is set when it is present but invalid.
func IdleTimeout(annotations map[string]string) (d time.Duration, ok bool, err error) {
	s, present := annotations[IdleTimeoutAnnotation]
	if !present {
		return 0, false, nil
	}
	d, err = ParseIdleTimeout(s)
	return d, err == nil, err
}

// ParseLastActivity reads the LastActivityAnnotation value (RFC 3339).
func ParseLastActivity(annotations map[string]string) (time.Time, bool) {
	s, ok := annotations[LastActivityAnnotation]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// FormatActivityTime is the annotation form of t: RFC 3339 in UTC, whole
// seconds, so every writer of the same instant writes the same string.
func FormatActivityTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

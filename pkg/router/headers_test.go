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

package router

import (
	"math"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTarget(t *testing.T) {
	cases := map[string]struct {
		headers       map[string]string
		allowLoopback bool
		want          Target
		wantErr       string
	}{
		"defaults": {
			headers: map[string]string{"X-Sandbox-ID": "sb-1"},
			want:    Target{ID: "sb-1", Namespace: "default", Port: 8888},
		},
		// Parsing only: a non-loopback pod IP must be accepted as a hint
		// (real clusters); nothing here is dialled.
		"all headers, any case": {
			headers: map[string]string{
				"x-sandbox-id": "a", "X-SANDBOX-NAMESPACE": "team-a", "X-Sandbox-Port": "65535",
				"X-Sandbox-Pod-IP": "192.0.2.7", "X-Sandbox-UID": "u-1", "X-Sandbox-Timeout": "1.5",
			},
			want: Target{ID: "a", Namespace: "team-a", Port: 65535, PodIP: netip.MustParseAddr("192.0.2.7"), UID: "u-1", Timeout: 1500 * time.Millisecond},
		},
		"ipv6 hint":               {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "fd00::1"}, want: Target{ID: "a", Namespace: "default", Port: 8888, PodIP: netip.MustParseAddr("fd00::1")}},
		"loopback allowed":        {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "127.0.0.5"}, allowLoopback: true, want: Target{ID: "a", Namespace: "default", Port: 8888, PodIP: netip.MustParseAddr("127.0.0.5")}},
		"63 chars":                {headers: map[string]string{"X-Sandbox-ID": strings.Repeat("a", 63)}, want: Target{ID: strings.Repeat("a", 63), Namespace: "default", Port: 8888}},
		"timeout zero ignored":    {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Timeout": "0"}, want: Target{ID: "a", Namespace: "default", Port: 8888}},
		"timeout negative":        {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Timeout": "-3"}, want: Target{ID: "a", Namespace: "default", Port: 8888}},
		"timeout NaN":             {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Timeout": "NaN"}, want: Target{ID: "a", Namespace: "default", Port: 8888}},
		"timeout Inf":             {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Timeout": "+Inf"}, want: Target{ID: "a", Namespace: "default", Port: 8888}},
		"timeout garbage":         {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Timeout": "soon"}, want: Target{ID: "a", Namespace: "default", Port: 8888}},
		"timeout huge saturates":  {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Timeout": "1e300"}, want: Target{ID: "a", Namespace: "default", Port: 8888, Timeout: time.Duration(math.MaxInt64)}},
		"missing id":              {headers: map[string]string{}, wantErr: "X-Sandbox-ID header is required."},
		"empty id":                {headers: map[string]string{"X-Sandbox-ID": ""}, wantErr: "X-Sandbox-ID header is required."},
		"id with dot":             {headers: map[string]string{"X-Sandbox-ID": "a.b"}, wantErr: "Invalid sandbox ID format."},
		"id with slash":           {headers: map[string]string{"X-Sandbox-ID": "a/b"}, wantErr: "Invalid sandbox ID format."},
		"id uppercase":            {headers: map[string]string{"X-Sandbox-ID": "Abc"}, wantErr: "Invalid sandbox ID format."},
		"id leading dash":         {headers: map[string]string{"X-Sandbox-ID": "-a"}, wantErr: "Invalid sandbox ID format."},
		"id trailing dash":        {headers: map[string]string{"X-Sandbox-ID": "a-"}, wantErr: "Invalid sandbox ID format."},
		"id 64 chars":             {headers: map[string]string{"X-Sandbox-ID": strings.Repeat("a", 64)}, wantErr: "Invalid sandbox ID format."},
		"bad namespace":           {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Namespace": "kube_system"}, wantErr: "Invalid namespace format."},
		"namespace traversal":     {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Namespace": "../x"}, wantErr: "Invalid namespace format."},
		"port zero":               {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Port": "0"}, wantErr: "Invalid port format."},
		"port too big":            {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Port": "65536"}, wantErr: "Invalid port format."},
		"port non numeric":        {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Port": "http"}, wantErr: "Invalid port format."},
		"port signed":             {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Port": "+80"}, wantErr: "Invalid port format."},
		"pod ip garbage":          {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "example.com"}, wantErr: "Invalid target IP address."},
		"pod ip unspecified":      {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "0.0.0.0"}, wantErr: "Invalid target IP address."},
		"pod ip v6 unspecified":   {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "::"}, wantErr: "Invalid target IP address."},
		"pod ip metadata":         {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "169.254.169.254"}, wantErr: "Invalid target IP address."},
		"pod ip v6 link local":    {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "fe80::1"}, wantErr: "Invalid target IP address."},
		"pod ip zoned":            {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "fd00::1%eth0"}, wantErr: "Invalid target IP address."},
		"pod ip multicast":        {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "224.0.0.1"}, wantErr: "Invalid target IP address."},
		"pod ip v6 multicast":     {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "ff02::1"}, wantErr: "Invalid target IP address."},
		"pod ip broadcast":        {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "255.255.255.255"}, wantErr: "Invalid target IP address."},
		"pod ip loopback":         {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "127.0.0.1"}, wantErr: "Invalid target IP address."},
		"pod ip v6 loopback":      {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "::1"}, wantErr: "Invalid target IP address."},
		"pod ip mapped loopback":  {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "::ffff:127.0.0.1"}, wantErr: "Invalid target IP address."},
		"pod ip mapped metadata":  {headers: map[string]string{"X-Sandbox-ID": "a", "X-Sandbox-Pod-IP": "::ffff:169.254.169.254"}, wantErr: "Invalid target IP address."},
		"first failure wins (id)": {headers: map[string]string{"X-Sandbox-ID": "A", "X-Sandbox-Port": "x"}, wantErr: "Invalid sandbox ID format."},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			got, err := ParseTarget(h, tc.allowLoopback)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseTarget() = %+v, want error %q", got, tc.wantErr)
				}
				if err.Status != http.StatusBadRequest || err.Detail != tc.wantErr {
					t.Fatalf("ParseTarget() error = %d %q, want 400 %q", err.Status, err.Detail, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTarget() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ParseTarget() (-want,+got):\n%s", diff)
			}
		})
	}
}

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// FuzzParseTarget: parsing never panics, and whatever it accepts is a
// DNS label ID and namespace, a port in range and a permitted IP class.
func FuzzParseTarget(f *testing.F) {
	seeds := [][6]string{
		{"sb-1", "", "", "", "", ""},
		{"a", "team-a", "8888", "192.0.2.1", "uid", "1.5"},
		{"A", "ns", "0", "::1", "", "NaN"},
		{"a-", "-ns", "65536", "169.254.169.254", "", "-1"},
		{"a.b", "a/b", "+80", "::ffff:127.0.0.1", "", "1e309"},
		{"x", "y", "00080", "fe80::1%eth0", "", "0x1p4"},
		{"z", "", "99999999999999999999", "224.0.0.1", "", "Inf"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], false)
	}
	f.Fuzz(func(t *testing.T, id, ns, port, ip, uid, timeout string, allowLoopback bool) {
		h := http.Header{}
		for k, v := range map[string]string{
			HeaderSandboxID: id, HeaderSandboxNamespace: ns, HeaderSandboxPort: port,
			HeaderSandboxPodIP: ip, HeaderSandboxUID: uid, HeaderSandboxTimeout: timeout,
		} {
			h[k] = []string{v}
		}
		got, err := ParseTarget(h, allowLoopback)
		if err != nil {
			if err.Status != http.StatusBadRequest || err.Detail == "" {
				t.Fatalf("bad error %+v", err)
			}
			return
		}
		if len(got.ID) > 63 || !dnsLabelRE.MatchString(got.ID) {
			t.Fatalf("accepted ID %q", got.ID)
		}
		if len(got.Namespace) > 63 || !dnsLabelRE.MatchString(got.Namespace) {
			t.Fatalf("accepted namespace %q", got.Namespace)
		}
		if got.Port < 1 || got.Port > 65535 {
			t.Fatalf("accepted port %d", got.Port)
		}
		if a := got.PodIP; a.IsValid() {
			if a.Is4In6() || a.Zone() != "" || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
				a.IsLinkLocalMulticast() || (a.IsLoopback() && !allowLoopback) {
				t.Fatalf("accepted pod IP %v", a)
			}
		}
		if got.Timeout < 0 {
			t.Fatalf("negative timeout %v", got.Timeout)
		}
	})
}

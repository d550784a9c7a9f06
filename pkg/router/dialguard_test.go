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
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/fakedns"
)

// fakeDNS answers every name with addr, like a cluster DNS resolving an
// ExternalName Service (a CNAME anywhere) to an address a Pod never has.
func fakeDNS(t *testing.T, addr netip.Addr) string {
	t.Helper()
	return fakedns.Serve(t, func(string) (netip.Addr, bool) { return addr, true })
}

// With the DNS fallback, the name <id>.<ns>.svc.<domain> is whatever the
// cluster DNS says, and anyone who may create an ExternalName Service
// decides that. The router must still refuse to dial the address classes
// it refuses as Pod-IP hints (loopback here, link-local metadata
// endpoints in real clusters).
func TestDNSFallbackNeverDialsForbiddenAddresses(t *testing.T) {
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) {})
	dnsAddr := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	r, _ := newTestRouter(t, func(o *Options) {
		o.DNSFallback = true
		o.ClusterDomain = "cluster.test"
		o.AllowLoopbackPodIP = false
		o.UpstreamMaxRetries = 0
	})
	r.dialer.Resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", dnsAddr)
		},
	}
	front := frontend(t, r)
	req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "external-svc", be.portNum())
	readDetail(t, do(t, req), 502, "Could not connect to the backend sandbox: external-svc")
	if n := be.hits.Load(); n != 0 {
		t.Fatalf("the router dialled a loopback address through DNS (%d hits)", n)
	}
}

func TestDialGuard(t *testing.T) {
	for _, tc := range []struct {
		addr          string
		allowLoopback bool
		ok            bool
	}{
		// The guard is a pure check of the address before connect(): no
		// address here is dialled. A non-loopback pod IP (here an RFC 5737
		// documentation address) must pass it (real clusters), loopback
		// only when allowed.
		{"192.0.2.3:8888", false, true},
		{"[fd00::1]:8888", false, true},
		{"127.0.0.1:8888", false, false},
		{"127.0.0.1:8888", true, true},
		{"[::1]:8888", false, false},
		{"[::ffff:127.0.0.1]:8888", false, false},
		{"169.254.169.254:80", true, false},
		{"[::ffff:169.254.169.254]:80", true, false},
		{"[fe80::1%25lo]:80", true, false},
		{"[fe80::1%lo]:80", true, false},
		{"0.0.0.0:8888", true, false},
		{"[::]:8888", true, false},
		{"255.255.255.255:8888", true, false},
		{"224.0.0.1:8888", true, false},
		{"not-an-address", true, false},
	} {
		err := dialGuard(tc.allowLoopback)("tcp", tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("dialGuard(%v)(%q) = %v, want ok=%v", tc.allowLoopback, tc.addr, err, tc.ok)
		}
	}
}

// TestAttackDNSFallbackReachesOtherSandbox: with the fallback on, a tenant
// creates a Service (ExternalName, or a selector) named like an ID they
// may use, resolving to another tenant's sandbox Pod. The router must only
// dial addresses that the requested Sandbox's own status.podIPs lists.
func TestAttackDNSFallbackReachesOtherSandbox(t *testing.T) {
	victim := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("victim")) })
	dnsAddr := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	victimPod := sandboxPod("team-b", "victim", "127.0.0.1")
	// team-a/svc-sb is a Service-backed Sandbox whose Pod the cache does
	// not hold (not Ready yet, say); its status lists the address.
	svcSb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "svc-sb", Namespace: "team-a", UID: "svc-sb-uid"}}
	svcSb.Status.PodIPs = []string{"127.0.0.1"}
	r, _, _ := newTestRouterObjs(t, func(o *Options) {
		o.DNSFallback = true
		o.ClusterDomain = "cluster.test"
		o.UpstreamMaxRetries = 0
		o.DNSResolver = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "udp", dnsAddr)
			},
		}
	}, victimPod, sandboxFor(victimPod), svcSb)
	front := frontend(t, r)

	for _, tc := range []struct{ ns, id string }{
		{"team-a", "steal"},  // no such Sandbox in team-a
		{"team-a", "victim"}, // a name that exists only in team-b
		{"team-c", "victim"},
	} {
		req := sandboxRequest(t, front, http.MethodGet, "/", tc.ns, tc.id, victim.portNum())
		readDetail(t, do(t, req), 502, "Could not connect to the backend sandbox: "+tc.id)
	}
	if n := victim.hits.Load(); n != 0 {
		t.Fatalf("the DNS fallback reached team-b's sandbox %d times", n)
	}
	// The fallback still serves the Sandbox whose status lists the address.
	resp := do(t, sandboxRequest(t, front, http.MethodGet, "/", "team-a", "svc-sb", victim.portNum()))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fallback to a Sandbox's own status address: status %d, want 200", resp.StatusCode)
	}
}

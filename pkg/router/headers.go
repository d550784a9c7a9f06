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
	"strconv"
	"time"
)

// Routing headers, in Go's canonical form. Header names are
// case-insensitive on the wire; clients spell them X-Sandbox-ID and so on.
const (
	HeaderSandboxID        = "X-Sandbox-Id"
	HeaderSandboxNamespace = "X-Sandbox-Namespace"
	HeaderSandboxPort      = "X-Sandbox-Port"
	HeaderSandboxPodIP     = "X-Sandbox-Pod-Ip"
	HeaderSandboxUID       = "X-Sandbox-Uid"
	HeaderSandboxTimeout   = "X-Sandbox-Timeout"
)

// Defaults of the optional routing headers.
const (
	DefaultNamespace = "default"
	DefaultPort      = 8888
)

// Exact 400 messages of the wire contract; clients and tests match on them.
const (
	msgIDRequired     = "X-Sandbox-ID header is required."
	msgInvalidID      = "Invalid sandbox ID format."
	msgInvalidNS      = "Invalid namespace format."
	msgInvalidPort    = "Invalid port format."
	msgInvalidPodIP   = "Invalid target IP address."
	msgInvalidPath    = "Invalid request path."
	maxDNSLabelLength = 63
)

// Target is the validated routing information of one request.
type Target struct {
	// ID is the sandbox name, a DNS-1123 label.
	ID string
	// Namespace is the sandbox namespace, a DNS-1123 label.
	Namespace string
	// Port is the sandbox port, in [1, 65535].
	Port int
	// PodIP is the caller's hint of the sandbox Pod IP; the zero Addr when
	// absent. It is only ever compared with the cached Pod IPs.
	PodIP netip.Addr
	// UID is the Sandbox UID, a cache lookup key; empty when absent.
	UID string
	// Timeout is the caller's X-Sandbox-Timeout; 0 when absent or ignored.
	Timeout time.Duration
}

// RequestError is a request the router refuses before proxying it: an HTTP
// status and the detail sent back as {"detail": ...}.
type RequestError struct {
	Status int
	Detail string
	// retryAfter adds "Retry-After: 1" to the answer.
	retryAfter bool
}

func (e *RequestError) Error() string { return e.Detail }

func badRequest(detail string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Detail: detail}
}

// ParseTarget validates the routing headers. Only the first value of each
// header counts, and an empty value is treated as absent, which is what
// http.Header.Get gives every other reader of the request too.
// allowLoopback admits loopback X-Sandbox-Pod-IP hints (tests, sidecars).
func ParseTarget(h http.Header, allowLoopback bool) (Target, *RequestError) {
	t := Target{Namespace: DefaultNamespace, Port: DefaultPort}

	t.ID = h.Get(HeaderSandboxID)
	if t.ID == "" {
		return Target{}, badRequest(msgIDRequired)
	}
	if !isDNSLabel(t.ID) {
		return Target{}, badRequest(msgInvalidID)
	}
	if ns := h.Get(HeaderSandboxNamespace); ns != "" {
		if !isDNSLabel(ns) {
			return Target{}, badRequest(msgInvalidNS)
		}
		t.Namespace = ns
	}
	if p := h.Get(HeaderSandboxPort); p != "" {
		port, ok := parsePort(p)
		if !ok {
			return Target{}, badRequest(msgInvalidPort)
		}
		t.Port = port
	}
	if ip := h.Get(HeaderSandboxPodIP); ip != "" {
		addr, ok := parsePodIP(ip, allowLoopback)
		if !ok {
			return Target{}, badRequest(msgInvalidPodIP)
		}
		t.PodIP = addr
	}
	t.UID = h.Get(HeaderSandboxUID)
	t.Timeout = parseTimeout(h.Get(HeaderSandboxTimeout))
	return t, nil
}

// isDNSLabel is the RFC 1123 label rule Kubernetes uses for names and
// namespaces: ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, at most 63 characters.
// Hand-written rather than a regexp because it runs on every request.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > maxDNSLabelLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i != 0 && i != len(s)-1:
		default:
			return false
		}
	}
	return true
}

// parsePort accepts only plain decimal digits (no sign, no spaces, no
// underscores): strconv.Atoi alone would take "+80".
func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return n, true
}

// parsePodIP parses an IP literal and refuses the address classes a Pod
// never has but an attacker would like the router to dial. IPv4-mapped
// IPv6 is unmapped first, so ::ffff:127.0.0.1 counts as loopback; zoned
// addresses are refused because a zone selects a host interface.
func parsePodIP(s string, allowLoopback bool) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil || !dialableAddr(addr, allowLoopback) {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// dialableAddr is the address class rule shared by Pod-IP hints and every
// upstream dial: no zones, unspecified, link-local (cloud metadata
// endpoints), multicast or broadcast addresses, and loopback only when
// allowed. IPv4-mapped IPv6 is judged as the IPv4 address it maps.
func dialableAddr(addr netip.Addr, allowLoopback bool) bool {
	if !addr.IsValid() || addr.Zone() != "" {
		return false
	}
	addr = addr.Unmap()
	switch {
	case addr.IsUnspecified(),
		addr.IsLinkLocalUnicast(),
		addr.IsLinkLocalMulticast(),
		addr.IsInterfaceLocalMulticast(),
		addr.IsMulticast(),
		addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}),
		addr.IsLoopback() && !allowLoopback:
		return false
	}
	return true
}

// parseTimeout reads X-Sandbox-Timeout (seconds, may be fractional).
// Unparsable, non-finite and non-positive values are ignored, as the
// Python router does; huge values saturate instead of overflowing.
func parseTimeout(s string) time.Duration {
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0
	}
	if f >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	d := time.Duration(f * float64(time.Second))
	if d <= 0 {
		// Below a nanosecond: still a positive request, keep it positive.
		d = 1
	}
	return d
}

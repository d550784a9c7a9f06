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

package processnode

import (
	"fmt"
	"net/netip"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ipam hands out the Pod IPs of one node from its podCIDR, like the
// host-local CNI plugin: round robin from the address after the last one
// given out, so an address a deleted Pod leaves behind is not handed to the
// next Pod at once (clients and caches may still hold it for a moment).
// The network and broadcast addresses are never given out.
type ipam struct {
	prefix netip.Prefix

	mu    sync.Mutex
	byIP  map[netip.Addr]types.UID
	byUID map[types.UID]netip.Addr
	last  netip.Addr
}

// loopback is where every Pod IP must lie: the process node binds real
// servers to them, and nothing in development may listen on an address
// reachable from outside the machine.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

func newIPAM(cidr string) (*ipam, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("parsing pod CIDR %q: %w", cidr, err)
	}
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() || prefix.Bits() < loopback.Bits() || !loopback.Contains(prefix.Addr()) {
		return nil, fmt.Errorf("pod CIDR %s is not inside %s", prefix, loopback)
	}
	if prefix.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %s has no room for Pods", prefix)
	}
	return &ipam{prefix: prefix, byIP: map[netip.Addr]types.UID{}, byUID: map[types.UID]netip.Addr{}, last: prefix.Addr()}, nil
}

// first and lastUsable bound the addresses given out.
func (a *ipam) first() netip.Addr { return a.prefix.Addr().Next() }

func (a *ipam) lastUsable() netip.Addr {
	b := a.prefix.Addr().As4()
	host := uint32(1)<<(32-a.prefix.Bits()) - 1
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	v-- // the broadcast address
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// allocate returns the address of uid, giving it one if it has none.
func (a *ipam) allocate(uid types.UID) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byUID[uid]; ok {
		return ip, nil
	}
	first, last := a.first(), a.lastUsable()
	ip := a.last
	for range 1 << (32 - a.prefix.Bits()) {
		ip = ip.Next()
		if ip.Compare(last) > 0 || ip.Compare(first) < 0 {
			ip = first
		}
		if _, used := a.byIP[ip]; !used {
			a.byIP[ip], a.byUID[uid], a.last = uid, ip, ip
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s is exhausted", a.prefix)
}

// reserve records that uid holds ip, for addresses found in the state
// directory after a restart.
func (a *ipam) reserve(uid types.UID, ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.prefix.Contains(ip) || ip.Compare(a.first()) < 0 || ip.Compare(a.lastUsable()) > 0 {
		return fmt.Errorf("%s is not a usable address of pod CIDR %s", ip, a.prefix)
	}
	if owner, used := a.byIP[ip]; used && owner != uid {
		return fmt.Errorf("%s is already held by pod %s", ip, owner)
	}
	if held, ok := a.byUID[uid]; ok && held != ip {
		return fmt.Errorf("pod %s already holds %s", uid, held)
	}
	a.byIP[ip], a.byUID[uid] = uid, ip
	return nil
}

// release frees the address of uid, if it has one.
func (a *ipam) release(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byUID[uid]; ok {
		delete(a.byIP, ip)
		delete(a.byUID, uid)
	}
}

// inUse is how many addresses are given out.
func (a *ipam) inUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byUID)
}

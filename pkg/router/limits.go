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
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
)

// clientLimiter bounds the requests in flight per client IP. It is on
// every request's path, so it is sharded: two requests contend only when
// their IPs hash to the same shard.
type clientLimiter struct {
	max    int
	seed   maphash.Seed
	shards [32]clientShard
}

type clientShard struct {
	mu sync.Mutex
	n  map[string]int
	_  [48]byte // a cache line per shard: no false sharing between locks
}

func newClientLimiter(perClient int) *clientLimiter {
	l := &clientLimiter{max: perClient, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].n = map[string]int{}
	}
	return l
}

func (l *clientLimiter) shard(ip string) *clientShard {
	return &l.shards[maphash.String(l.seed, ip)%uint64(len(l.shards))]
}

// acquire takes a slot for ip; false when ip already has max.
func (l *clientLimiter) acquire(ip string) bool {
	s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[ip] >= l.max {
		return false
	}
	s.n[ip]++
	return true
}

func (l *clientLimiter) release(ip string) {
	s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[ip] <= 1 {
		delete(s.n, ip)
		return
	}
	s.n[ip]--
}

// limitListener bounds the connections a proxy listener holds open: in
// total (Accept waits for a free slot, as netutil.LimitListener does, so
// a burst queues in the kernel's backlog) and per client IP (the excess
// connection is closed at once, so one client cannot take every slot).
// netutil.LimitListener is not used because its connections hide
// CloseWrite, which ReverseProxy needs to half-close upgraded connections.
type limitListener struct {
	net.Listener
	slots     chan struct{} // nil: no total bound
	perClient int           // 0: no per-client bound
	onReject  func()

	mu     sync.Mutex
	perIP  map[netip.Addr]int
	done   chan struct{}
	closed sync.Once
}

func newLimitListener(l net.Listener, total, perClient int, onReject func()) net.Listener {
	if total <= 0 && perClient <= 0 {
		return l
	}
	ll := &limitListener{Listener: l, perClient: perClient, onReject: onReject, perIP: map[netip.Addr]int{}, done: make(chan struct{})}
	if total > 0 {
		ll.slots = make(chan struct{}, total)
	}
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.releaseSlot()
			return nil, err
		}
		var ip netip.Addr
		if tcp, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip = tcp.AddrPort().Addr().Unmap()
		}
		if l.perClient > 0 {
			l.mu.Lock()
			if l.perIP[ip] >= l.perClient {
				l.mu.Unlock()
				if l.onReject != nil {
					l.onReject()
				}
				_ = c.Close()
				l.releaseSlot()
				continue
			}
			l.perIP[ip]++
			l.mu.Unlock()
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *limitListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) releaseSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

func (l *limitListener) release(ip netip.Addr) {
	if l.perClient > 0 {
		l.mu.Lock()
		if l.perIP[ip] <= 1 {
			delete(l.perIP, ip)
		} else {
			l.perIP[ip]--
		}
		l.mu.Unlock()
	}
	l.releaseSlot()
}

// limitedConn gives its slots back on the first Close.
type limitedConn struct {
	net.Conn
	l        *limitListener
	ip       netip.Addr
	released sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.released.Do(func() { c.l.release(c.ip) })
	return err
}

// CloseWrite keeps half-close working for upgraded connections.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

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
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// tunnel is the shared state of one upgraded (WebSocket) connection's two
// sides. ReverseProxy relays it with two io.Copy loops that nothing else
// bounds: a peer that goes silent, or stops reading, would pin both
// connections and their goroutines forever. Each side's Read waits at
// most idle past the last byte moved in either direction (so one-way
// traffic keeps the tunnel alive), and each Write may block at most write
// (a peer that does not read is gone). ReverseProxy closes both sides as
// soon as one copy fails.
type tunnel struct {
	idle, write time.Duration
	epoch       time.Time
	// last is the time of the last byte moved, as an offset from epoch
	// (monotonic).
	last atomic.Int64
}

func newTunnel(idle, write time.Duration) *tunnel {
	return &tunnel{idle: idle, write: write, epoch: time.Now()}
}

func (t *tunnel) touch() { t.last.Store(int64(time.Since(t.epoch))) }

func (t *tunnel) lastActivity() time.Time { return t.epoch.Add(time.Duration(t.last.Load())) }

// tunnelConn is one side of a tunnel. Bytes go through rw (the hijacked
// client connection, or the upstream's 101 body, which first returns what
// the transport had already buffered); deadlines are set on Conn, the
// underlying connection.
type tunnelConn struct {
	net.Conn
	rw io.ReadWriteCloser
	t  *tunnel
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	for {
		if c.t.idle > 0 {
			_ = c.Conn.SetReadDeadline(c.t.lastActivity().Add(c.t.idle))
		}
		n, err := c.rw.Read(p)
		if n > 0 {
			c.t.touch()
		}
		if n == 0 && c.t.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) && time.Since(c.t.lastActivity()) < c.t.idle {
			// The other direction moved bytes meanwhile: not idle.
			continue
		}
		return n, err
	}
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	if c.t.write > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.t.write))
	}
	n, err := c.rw.Write(p)
	if n > 0 {
		c.t.touch()
	}
	return n, err
}

func (c *tunnelConn) Close() error { return c.rw.Close() }

// CloseWrite keeps ReverseProxy's half-close of upgraded connections.
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.rw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

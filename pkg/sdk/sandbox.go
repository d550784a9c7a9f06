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

package sdk

import (
	"context"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// handleState is where a Sandbox handle is in its life.
type handleState int

const (
	// stateOpen accepts operations.
	stateOpen handleState = iota
	// stateClosed refuses operations; the claim may still exist (after
	// Disconnect, or after a Close whose delete failed).
	stateClosed
	// stateDeleted means Close deleted the claim.
	stateDeleted
)

// Sandbox is a handle on one claimed, Ready sandbox. Its methods are safe for
// concurrent use. Close deletes the claim; Disconnect only drops the handle.
type Sandbox struct {
	client *Client

	namespace   string
	claimName   string
	sandboxName string
	podName     string
	podIP       string
	launchType  string
	annotations map[string]string
	// envPort and envHeader are a warm claim's env (the Sandbox's env
	// annotation), sent as X-Sandbox-Env in direct mode only, where no
	// router sets it (docs/design/warm-env.md).
	envPort   int
	envHeader string
	// readyAt is when the handle saw the Sandbox Ready; the router may
	// lag behind it for a moment (see routeSettleWindow).
	readyAt time.Time

	// lifecycle serializes Close and Disconnect.
	lifecycle sync.Mutex

	mu       sync.Mutex
	state    handleState
	inflight sync.WaitGroup
	// opsCtx is the parent of every operation's context; Close cancels it
	// once in-flight operations had their grace period.
	opsCtx    context.Context
	cancelOps context.CancelFunc
}

func newSandbox(c *Client, namespace, claimName string) *Sandbox {
	ctx, cancel := context.WithCancel(context.Background())
	return &Sandbox{client: c, namespace: namespace, claimName: claimName, opsCtx: ctx, cancelOps: cancel}
}

// setIdentity records what the data path needs from the Ready Sandbox.
func (s *Sandbox) setIdentity(sb *agentsv1beta1.Sandbox, claimPodIPs []string) {
	s.sandboxName = sb.Name
	s.podName = sb.Name
	if p := sb.Annotations[agentsv1beta1.PodNameAnnotation]; p != "" {
		s.podName = p
	}
	s.podIP = pickPodIP(sb.Status.PodIPs)
	if s.podIP == "" {
		s.podIP = pickPodIP(claimPodIPs)
	}
	s.launchType = sb.Labels[agentsv1beta1.LaunchTypeLabel]
	s.annotations = maps.Clone(sb.Annotations)
	s.envPort, s.envHeader = 0, ""
	if a, ok := sb.Annotations[agentsv1beta1.EnvAnnotation]; ok {
		if spec, err := warmenv.Parse(a); err == nil {
			s.envPort, s.envHeader = int(spec.Port), warmenv.EncodeHeader(spec.Env)
		}
	}
	s.readyAt = time.Now()
}

// pickPodIP prefers the first IPv4 address, then the first valid one, so a
// dual-stack pod is reached the same way the router's cache would reach it.
func pickPodIP(ips []string) string {
	first := ""
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			continue
		}
		if ip.To4() != nil {
			return ip.String()
		}
		if first == "" {
			first = ip.String()
		}
	}
	return first
}

// Namespace returns the namespace of the claim and the Sandbox.
func (s *Sandbox) Namespace() string { return s.namespace }

// ClaimName returns the SandboxClaim's name; Attach takes it.
func (s *Sandbox) ClaimName() string { return s.claimName }

// SandboxName returns the bound Sandbox's name (X-Sandbox-ID). It differs
// from the claim name when the sandbox came from a warm pool.
func (s *Sandbox) SandboxName() string { return s.sandboxName }

// PodName returns the backing Pod's name.
func (s *Sandbox) PodName() string { return s.podName }

// PodIP returns the Pod IP recorded when the sandbox became Ready (IPv4
// preferred), or "" if none was published.
func (s *Sandbox) PodIP() string { return s.podIP }

// LaunchType returns how the claim got its sandbox: "warm" (adopted from
// the warm pool) or "cold" (created for it), from the Sandbox's
// agents.x-k8s.io/launch-type label; "" if the controller set none.
func (s *Sandbox) LaunchType() string { return s.launchType }

// Annotations returns a copy of the Sandbox's annotations as they were when
// it became Ready.
func (s *Sandbox) Annotations() map[string]string { return maps.Clone(s.annotations) }

// IsOpen reports whether the handle still accepts operations.
func (s *Sandbox) IsOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateOpen
}

// String names the sandbox the way error messages do.
func (s *Sandbox) String() string {
	return fmt.Sprintf("sandbox[%s/%s]", s.namespace, s.claimName)
}

// wrap prefixes err with the sandbox's identity.
func (s *Sandbox) wrap(err error) error { return prefixed(s.namespace, s.claimName, err) }

// begin registers an operation so Close can drain it, and returns its
// context, which Close cancels if the operation outlives the grace period.
// done must be called exactly once.
func (s *Sandbox) begin(ctx context.Context) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotReady, ErrAlreadyClosed)
	}
	s.inflight.Add(1)
	opCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.opsCtx, cancel)
	var once sync.Once
	return opCtx, func() {
		once.Do(func() {
			stop()
			cancel()
			s.inflight.Done()
		})
	}, nil
}

// Disconnect drops the handle and keeps the claim, for example to hand the
// sandbox to another process that calls Client.Attach. Operations already
// running finish; new ones fail with ErrAlreadyClosed.
func (s *Sandbox) Disconnect() {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateOpen {
		s.state = stateClosed
	}
}

// Close refuses new operations, gives the ones in flight up to half of the
// cleanup budget to finish (then cancels them), and deletes the claim; the
// Sandbox and its Pod follow by garbage collection. A claim that is already
// gone counts as deleted. Close after a successful Close returns nil; after a
// failed one it tries the delete again.
//
// The budget is the cleanup timeout (WithCleanupTimeout), or ctx's deadline
// if that is earlier.
func (s *Sandbox) Close(ctx context.Context) error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()

	s.mu.Lock()
	if s.state == stateDeleted {
		s.mu.Unlock()
		return nil
	}
	s.state = stateClosed
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.client.cfg.cleanupTimeout)
	defer cancel()
	s.drain(ctx)
	s.cancelOps()

	if err := s.client.deleteClaim(ctx, s.namespace, s.claimName); err != nil {
		return s.wrap(fmt.Errorf("closing: %w", err))
	}
	s.mu.Lock()
	s.state = stateDeleted
	s.mu.Unlock()
	klog.FromContext(ctx).V(2).Info("Deleted sandbox claim", "claim", klog.KRef(s.namespace, s.claimName))
	return nil
}

// drain waits for in-flight operations for at most half of ctx's remaining
// time, keeping the rest for the delete.
func (s *Sandbox) drain(ctx context.Context) {
	grace := s.client.cfg.cleanupTimeout / 2
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl)/2)
	}
	done := make(chan struct{})
	go func() {
		// No new Add can happen: state is no longer open.
		s.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// deleteClaim deletes a claim with default propagation; NotFound is success.
func (c *Client) deleteClaim(ctx context.Context, namespace, name string) (err error) {
	ctx, span := c.startSpan(ctx, "delete", name)
	defer func() { endSpan(span, err) }()
	err = c.agents.ExtensionsV1beta1().SandboxClaims(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting claim %s/%s: %w", namespace, name, err)
	}
	return nil
}

// rollback deletes a claim that Create made but could not finish. It runs
// on a context detached from the caller's: the usual reason for the failure
// is that the caller's context ended, and the claim must not leak.
func (c *Client) rollback(ctx context.Context, namespace, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.cleanupTimeout)
	defer cancel()
	if err := c.deleteClaim(ctx, namespace, name); err != nil {
		return fmt.Errorf("rolling back: %w", err)
	}
	return nil
}

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
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// namedObject is a pointer to one of our API types.
type namedObject interface {
	metav1.Object
	comparable
}

// observeFunc sees each state of the watched object; obj is nil when the
// object is absent from a list or was deleted (deleted says which). It
// returns done to stop watching, or an error to abort.
type observeFunc[T namedObject] func(obj T, deleted bool) (done bool, err error)

// watchNamed lists one object by name, hands it to observe, then watches
// from the list's resourceVersion so no change between the two is lost. A
// watch that fails or ends is replaced by a fresh list after a backoff
// (100 ms doubling to 5 s, reset by any delivered event). It returns when
// observe says done or fails, when ctx ends (ctx.Err()), or when the API
// server rejects the request in a way retrying cannot fix.
func watchNamed[T namedObject](
	ctx context.Context,
	name string,
	list func(context.Context, metav1.ListOptions) ([]T, string, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
	observe observeFunc[T],
	backoff func(int) time.Duration,
) error {
	logger := klog.FromContext(ctx)
	// The field selector keeps the real API server's traffic to one
	// object; the name checks below still filter, because not every
	// implementation (the fake clientset among them) applies it.
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	failures := 0
	for {
		if failures > 0 {
			if err := sleepCtx(ctx, backoff(failures)); err != nil {
				return err
			}
		}
		items, rv, err := list(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if permanentAPIError(err) {
				return err
			}
			logger.V(4).Info("List failed, retrying", "name", name, "err", err)
			failures++
			continue
		}
		var found T
		for _, it := range items {
			if it.GetName() == name {
				found = it
			}
		}
		if done, err := observe(found, false); done || err != nil {
			return err
		}

		w, err := watchFn(ctx, metav1.ListOptions{
			FieldSelector:       selector,
			ResourceVersion:     rv,
			AllowWatchBookmarks: true,
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if permanentAPIError(err) {
				return err
			}
			logger.V(4).Info("Watch failed, re-listing", "name", name, "err", err)
			failures++
			continue
		}
		delivered, done, err := consume(ctx, w, name, observe)
		w.Stop()
		if done || err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if delivered {
			failures = 0
		}
		failures++
	}
}

// consume reads one watch until it ends, fails, or observe is done.
func consume[T namedObject](ctx context.Context, w watch.Interface, name string, observe observeFunc[T]) (delivered, done bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return delivered, false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return delivered, false, nil
			}
			switch ev.Type {
			case watch.Error:
				// Typically 410 Gone: the resourceVersion is too
				// old. A fresh list recovers.
				klog.FromContext(ctx).V(4).Info("Watch error, re-listing", "name", name, "status", apierrors.FromObject(ev.Object))
				return delivered, false, nil
			case watch.Bookmark:
				continue
			}
			obj, ok := ev.Object.(T)
			if !ok || obj.GetName() != name {
				continue
			}
			delivered = true
			var zero T
			if ev.Type == watch.Deleted {
				done, err = observe(zero, true)
			} else {
				done, err = observe(obj, false)
			}
			if done || err != nil {
				return delivered, done, err
			}
		}
	}
}

// permanentAPIError is true for rejections that a retry cannot fix: no
// permission, or the resource type is not served (CRDs not installed).
func permanentAPIError(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsNotFound(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsInvalid(err) || apierrors.IsMethodNotSupported(err)
}

// waitForSandboxName watches the claim until the controller reports the
// bound Sandbox's name, and returns it with the claim's pod IPs.
func (c *Client) waitForSandboxName(ctx context.Context, namespace, claimName string) (string, []string, error) {
	claims := c.agents.ExtensionsV1beta1().SandboxClaims(namespace)
	var last *extensionsv1beta1.SandboxClaim
	var name string
	var podIPs []string
	err := watchNamed(ctx, claimName,
		func(ctx context.Context, opts metav1.ListOptions) ([]*extensionsv1beta1.SandboxClaim, string, error) {
			l, err := claims.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			out := make([]*extensionsv1beta1.SandboxClaim, len(l.Items))
			for i := range l.Items {
				out[i] = &l.Items[i]
			}
			return out, l.ResourceVersion, nil
		},
		claims.Watch,
		func(claim *extensionsv1beta1.SandboxClaim, deleted bool) (bool, error) {
			if claim == nil {
				// The claim is ours or named by the caller: absent
				// means deleted.
				return false, fmt.Errorf("%w: claim %s/%s is gone", ErrSandboxDeleted, namespace, claimName)
			}
			last = claim
			if n := claim.Status.SandboxStatus.Name; n != "" {
				name, podIPs = n, claim.Status.SandboxStatus.PodIPs
				return true, nil
			}
			return false, nil
		},
		c.watchBackoff)
	if err != nil {
		return "", nil, waitError(ctx, err, fmt.Sprintf("claim %s/%s to be bound to a sandbox", namespace, claimName), claimConditions(last))
	}
	return name, podIPs, nil
}

// waitForSandboxReady watches the Sandbox until it is Ready (and, in direct
// mode, has a pod IP to dial).
func (c *Client) waitForSandboxReady(ctx context.Context, namespace, name string, claimPodIPs []string) (*agentsv1beta1.Sandbox, error) {
	sandboxes := c.agents.AgentsV1beta1().Sandboxes(namespace)
	var last, ready *agentsv1beta1.Sandbox
	err := watchNamed(ctx, name,
		func(ctx context.Context, opts metav1.ListOptions) ([]*agentsv1beta1.Sandbox, string, error) {
			l, err := sandboxes.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			out := make([]*agentsv1beta1.Sandbox, len(l.Items))
			for i := range l.Items {
				out[i] = &l.Items[i]
			}
			return out, l.ResourceVersion, nil
		},
		sandboxes.Watch,
		func(sb *agentsv1beta1.Sandbox, deleted bool) (bool, error) {
			switch {
			case deleted, sb == nil && last != nil:
				return false, fmt.Errorf("%w: sandbox %s/%s was deleted", ErrSandboxDeleted, namespace, name)
			case sb == nil:
				// Not visible yet although the claim names it:
				// keep waiting rather than guess.
				return false, nil
			}
			last = sb
			if c.sandboxServes(sb, claimPodIPs) {
				ready = sb
				return true, nil
			}
			return false, nil
		},
		c.watchBackoff)
	if err != nil {
		conds := "sandbox not observed"
		if last != nil {
			conds = formatConditions(last.Status.Conditions)
		}
		return nil, waitError(ctx, err, fmt.Sprintf("sandbox %s/%s to become Ready", namespace, name), conds)
	}
	return ready, nil
}

// sandboxServes is the readiness the SDK needs: Ready=True, plus an address
// when requests go straight to the pod.
func (c *Client) sandboxServes(sb *agentsv1beta1.Sandbox, claimPodIPs []string) bool {
	if !apimeta.IsStatusConditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()) {
		return false
	}
	if c.cfg.directPodIP {
		return pickPodIP(sb.Status.PodIPs) != "" || pickPodIP(claimPodIPs) != ""
	}
	return true
}

// waitError turns the end of a wait into the SDK's error: a deadline is
// ErrTimeout and names what was last seen, so a stuck claim can be diagnosed
// from the message alone.
func waitError(ctx context.Context, err error, what, lastSeen string) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w waiting for %s; last conditions: %s: %w", ErrTimeout, what, lastSeen, ctx.Err())
	}
	return fmt.Errorf("waiting for %s: %w", what, err)
}

func claimConditions(claim *extensionsv1beta1.SandboxClaim) string {
	if claim == nil {
		return "claim not observed"
	}
	return formatConditions(claim.Status.Conditions)
}

// formatConditions renders "Type=Status (Reason: Message), ...".
func formatConditions(conds []metav1.Condition) string {
	if len(conds) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(conds))
	for _, c := range conds {
		p := c.Type + "=" + string(c.Status)
		switch {
		case c.Reason != "" && c.Message != "":
			p += " (" + c.Reason + ": " + c.Message + ")"
		case c.Reason != "":
			p += " (" + c.Reason + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// watchBackoff is the pause before re-list number i (i >= 1).
func watchBackoff(i int) time.Duration {
	d := 100 * time.Millisecond
	for ; i > 1 && d < 5*time.Second; i-- {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// sleepCtx sleeps for d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/klog/v2"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// namedObject is a pointer to one of our API types.
type namedObject interface {
	runtime.Object
	metav1.Object
	comparable
}

// observeFunc sees each state of the watched object; obj is nil when the
// object is absent from a list or was deleted (deleted says which). It
// returns done to stop watching, or an error to abort.
type observeFunc[T namedObject] func(obj T, deleted bool) (done bool, err error)

// watchNamed hands observe the object called name in namespace as the
// first list shows it (nil when absent), then every change, until observe
// says done or fails, ctx ends (ctx.Err()), or the API server rejects the
// request in a way retrying cannot fix (that error).
//
// The list-then-watch, resuming a closed watch from its resourceVersion,
// and the fresh list after a watch fails or expires (410 Gone) are
// client-go's informer watcher, the machinery of watchtools.UntilWithSync;
// its reflector also spaces the retries. Two things are our own:
//
//   - giving up: the reflector retries a Forbidden or a missing CRD for
//     ever, so the ListerWatcher here ends the wait on those;
//   - waiting for the first list: UntilWithSync waits with
//     WaitForCacheSync, which polls every 100 ms. A Create waits twice (the
//     claim, then its Sandbox), so that poll would add up to 200 ms to every
//     claim, and a Sandbox deleted during the claim's poll would be missed
//     by the Sandbox's list and the wait would run to its timeout instead of
//     failing with ErrSandboxDeleted. The informer's HasSyncedChecker ends
//     the wait as soon as the list is in the store.
func watchNamed[T namedObject](
	ctx context.Context,
	cs clientset.Interface,
	objType T,
	namespace, name string,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
	observe observeFunc[T],
) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopIfPermanent := func(err error) {
		if err != nil && permanentAPIError(err) {
			cancel(err)
		}
	}
	// The field selector keeps the real API server's traffic to one
	// object; the name checks below still filter, because not every
	// implementation (the fake clientset among them) applies it.
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			obj, err := list(ctx, opts)
			stopIfPermanent(err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			w, err := watchFn(ctx, opts)
			stopIfPermanent(err)
			return w, err
		},
	}
	store, informer, events, stopped := watchtools.NewIndexerInformerWatcherWithLogger(
		klog.FromContext(ctx), cache.ToListWatcherWithWatchListSemantics(lw, cs), objType)
	// Stopping the watcher stops the informer; waiting for it keeps no
	// reflector running (or calling list) after we return.
	defer func() { <-stopped }()
	defer events.Stop()

	err := func() error {
		if !cache.WaitFor(ctx, "", informer.HasSyncedChecker()) {
			return ctx.Err()
		}
		var first, zero T
		obj, exists, err := store.GetByKey(cache.ObjectName{Namespace: namespace, Name: name}.String())
		if err != nil {
			return err
		}
		if exists {
			first = obj.(T)
		}
		// The events below start again from the list's Added events,
		// so observe may see a state twice; it judges each state on its
		// own, so that does no harm.
		if done, err := observe(first, false); done || err != nil {
			return err
		}
		_, err = watchtools.UntilWithoutRetry(ctx, events, func(ev watch.Event) (bool, error) {
			obj, ok := ev.Object.(T)
			if !ok || obj.GetName() != name {
				return false, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return observe(zero, true)
			case watch.Added, watch.Modified:
				return observe(obj, false)
			}
			return false, nil
		})
		return err
	}()
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	return err
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
	err := watchNamed(ctx, c.agents, &extensionsv1beta1.SandboxClaim{}, namespace, claimName,
		func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return claims.List(ctx, opts)
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
		})
	if err != nil {
		return "", nil, waitError(ctx, err, fmt.Sprintf("claim %s/%s to be bound to a sandbox", namespace, claimName), claimConditions(last))
	}
	return name, podIPs, nil
}

// waitForSandboxReady watches the Sandbox until it is Ready (and, in direct
// mode, has a pod IP to dial).
func (c *Client) waitForSandboxReady(ctx context.Context, namespace, name string, claimPodIPs []string) (*agentsv1beta1.Sandbox, error) {
	return c.waitForSandbox(ctx, namespace, name, "become Ready", func(sb *agentsv1beta1.Sandbox) bool {
		return c.sandboxServes(sb, claimPodIPs)
	})
}

// waitForSandbox watches the Sandbox until done holds for it; what names
// the awaited state in a timeout error ("sandbox x/y to <what>").
func (c *Client) waitForSandbox(ctx context.Context, namespace, name, what string, done func(*agentsv1beta1.Sandbox) bool) (*agentsv1beta1.Sandbox, error) {
	sandboxes := c.agents.AgentsV1beta1().Sandboxes(namespace)
	var last, ready *agentsv1beta1.Sandbox
	err := watchNamed(ctx, c.agents, &agentsv1beta1.Sandbox{}, namespace, name,
		func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return sandboxes.List(ctx, opts)
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
			if done(sb) {
				ready = sb
				return true, nil
			}
			return false, nil
		})
	if err != nil {
		conds := "sandbox not observed"
		if last != nil {
			conds = formatConditions(last.Status.Conditions)
		}
		return nil, waitError(ctx, err, fmt.Sprintf("sandbox %s/%s to %s", namespace, name, what), conds)
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

// wakesOnRequest reports whether sb, though not Ready, serves the next
// request anyway: in router mode, the router resumes a suspended Sandbox
// opted into wake on request and holds the request until it is Ready
// (docs/router.md, "Wake on request"). Direct mode has no Pod to dial.
func (c *Client) wakesOnRequest(sb *agentsv1beta1.Sandbox) bool {
	return !c.cfg.directPodIP && sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended &&
		sb.Annotations[agentsv1beta1.WakeOnRequestAnnotation] == agentsv1beta1.WakeOnRequestEnabled
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

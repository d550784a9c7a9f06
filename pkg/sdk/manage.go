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
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// DeleteClaim deletes the claim claimName (in the namespace of
// WithNamespace, else the client's default), for callers that hold no
// handle on it; its Sandbox and Pod follow by garbage collection. A claim
// that does not exist is ErrSandboxDeleted, so a caller can tell "already
// gone" from "deleted now".
func (c *Client) DeleteClaim(ctx context.Context, claimName string, opts ...SandboxOption) error {
	cc := createConfig{namespace: c.cfg.namespace}
	for _, o := range opts {
		if o != nil {
			o.applyCreate(&cc)
		}
	}
	if err := validateClaimRef(cc.namespace, claimName); err != nil {
		return prefixed(cc.namespace, claimName, err)
	}
	err := c.agents.ExtensionsV1beta1().SandboxClaims(cc.namespace).Delete(ctx, claimName, metav1.DeleteOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return prefixed(cc.namespace, claimName, fmt.Errorf("%w: claim not found: %w", ErrSandboxDeleted, err))
	case err != nil:
		return prefixed(cc.namespace, claimName, fmt.Errorf("deleting claim: %w", err))
	}
	klog.FromContext(ctx).V(2).Info("Deleted sandbox claim", "claim", klog.KRef(cc.namespace, claimName))
	return nil
}

// Suspend sets spec.operatingMode: Suspended on the Sandbox bound to the
// claim: the controller deletes its Pod and keeps the Sandbox, its PVCs
// and Service, so a Resume brings the same volumes back. The claim's
// spec has no operating mode; the Sandbox's is the one the API defines.
// With WithWaitForReady it waits (up to the ready timeout) until the
// Sandbox reports Suspended=True for this change. It returns the Sandbox's
// name. A missing claim or Sandbox is ErrSandboxDeleted, an unbound claim
// ErrNotReady.
func (c *Client) Suspend(ctx context.Context, claimName string, opts ...AttachOption) (string, error) {
	return c.setOperatingMode(ctx, claimName, agentsv1beta1.SandboxOperatingModeSuspended, "report Suspended",
		func(sb *agentsv1beta1.Sandbox, gen int64) bool {
			return conditionAt(sb, agentsv1beta1.SandboxConditionSuspended, gen)
		}, opts)
}

// Resume sets spec.operatingMode: Running on the claim's Sandbox, so the
// controller creates its Pod again. With WithWaitForReady it waits until
// the Sandbox is Ready again for this change. Errors are Suspend's.
func (c *Client) Resume(ctx context.Context, claimName string, opts ...AttachOption) (string, error) {
	return c.setOperatingMode(ctx, claimName, agentsv1beta1.SandboxOperatingModeRunning, "become Ready",
		func(sb *agentsv1beta1.Sandbox, gen int64) bool {
			return conditionAt(sb, agentsv1beta1.SandboxConditionReady, gen) && c.sandboxServes(sb, nil)
		}, opts)
}

// conditionAt reports whether condition t is True and was computed for
// generation gen or later: a Ready=True left over from before a suspend
// must not pass for the Pod that a resume brings back.
func conditionAt(sb *agentsv1beta1.Sandbox, t agentsv1beta1.ConditionType, gen int64) bool {
	cond := apimeta.FindStatusCondition(sb.Status.Conditions, t.String())
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration >= gen
}

func (c *Client) setOperatingMode(ctx context.Context, claimName string, mode agentsv1beta1.SandboxOperatingMode, what string,
	reached func(*agentsv1beta1.Sandbox, int64) bool, opts []AttachOption) (string, error) {
	cc := createConfig{namespace: c.cfg.namespace, readyTimeout: c.cfg.readyTimeout}
	for _, o := range opts {
		if o != nil {
			o.applyAttach(&cc)
		}
	}
	wrap := func(err error) error { return prefixed(cc.namespace, claimName, err) }
	if err := validateClaimRef(cc.namespace, claimName); err != nil {
		return "", wrap(err)
	}
	claim, err := c.agents.ExtensionsV1beta1().SandboxClaims(cc.namespace).Get(ctx, claimName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", wrap(fmt.Errorf("%w: claim not found: %w", ErrSandboxDeleted, err))
	}
	if err != nil {
		return "", wrap(fmt.Errorf("getting claim: %w", err))
	}
	name := claim.Status.SandboxStatus.Name
	if name == "" {
		return "", wrap(fmt.Errorf("%w: claim is not bound to a sandbox; conditions: %s", ErrNotReady, claimConditions(claim)))
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"operatingMode": mode}})
	if err != nil {
		return "", wrap(err)
	}
	// A merge patch of the one field: no read-modify-write, so a
	// concurrent controller status write cannot make it conflict.
	sb, err := c.agents.AgentsV1beta1().Sandboxes(cc.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return "", wrap(fmt.Errorf("%w: sandbox %s not found: %w", ErrSandboxDeleted, name, err))
	}
	if err != nil {
		return "", wrap(fmt.Errorf("setting operatingMode %s on sandbox %s: %w", mode, name, err))
	}
	klog.FromContext(ctx).V(2).Info("Set sandbox operating mode", "sandbox", klog.KObj(sb), "mode", mode)
	if !cc.waitForReady {
		return name, nil
	}
	gen := sb.Generation
	waitCtx, cancel := context.WithTimeout(ctx, cc.readyTimeout)
	defer cancel()
	if _, err := c.waitForSandbox(waitCtx, cc.namespace, name, what, func(sb *agentsv1beta1.Sandbox) bool {
		return reached(sb, gen)
	}); err != nil {
		return name, wrap(err)
	}
	return name, nil
}

func validateClaimRef(namespace, claimName string) error {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return fmt.Errorf("%w: namespace %q: %v", ErrInvalidArgument, namespace, msgs)
	}
	if msgs := validation.IsDNS1123Subdomain(claimName); len(msgs) > 0 {
		return fmt.Errorf("%w: claim name %q: %v", ErrInvalidArgument, claimName, msgs)
	}
	return nil
}

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
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// ClaimGenerateName is the generateName prefix of every claim the SDK
// creates.
const ClaimGenerateName = "sandbox-claim-"

// Create claims a sandbox from the warm pool warmPool and waits until it is
// Ready. The claim is created with generateName "sandbox-claim-", label
// agents.x-k8s.io/created-by=go-client and annotation
// agents.x-k8s.io/client-first-requested-at (RFC 3339 nano, UTC).
//
// The wait is bounded by the ready timeout (WithReadyTimeout) and by ctx. If
// anything fails after the claim was created, the claim is deleted on a fresh
// context before Create returns, and the error joins both causes. Errors wrap
// ErrClaimFailed (the create was refused), ErrTimeout (with the last observed
// conditions), ErrSandboxDeleted, or ctx's error.
func (c *Client) Create(ctx context.Context, warmPool string, opts ...CreateOption) (*Sandbox, error) {
	cc := newCreateConfig(c, opts)
	created, err := c.createClaim(ctx, warmPool, cc)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("claim", klog.KObj(created))
	sb := newSandbox(c, created.Namespace, created.Name)
	if sb.namespace == "" {
		// The fake clientset does not default the namespace.
		sb.namespace = cc.namespace
	}
	if err := c.waitUntilReady(ctx, sb, cc.readyTimeout); err != nil {
		if rbErr := c.rollback(ctx, sb.namespace, sb.claimName); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		return nil, sb.wrap(err)
	}
	logger.V(2).Info("Sandbox ready", "sandbox", sb.sandboxName, "podIP", sb.podIP)
	return sb, nil
}

// CreateClaim creates the claim that Create would and returns it without
// waiting for a sandbox; Attach with WithWaitForReady waits later. The
// claim is not deleted on any later failure: it is the caller's.
func (c *Client) CreateClaim(ctx context.Context, warmPool string, opts ...CreateOption) (*extensionsv1beta1.SandboxClaim, error) {
	return c.createClaim(ctx, warmPool, newCreateConfig(c, opts))
}

func newCreateConfig(c *Client, opts []CreateOption) createConfig {
	cc := createConfig{namespace: c.cfg.namespace, readyTimeout: c.cfg.readyTimeout}
	for _, o := range opts {
		if o != nil {
			o.applyCreate(&cc)
		}
	}
	return cc
}

func (c *Client) createClaim(ctx context.Context, warmPool string, cc createConfig) (_ *extensionsv1beta1.SandboxClaim, err error) {
	if err := cc.validate(warmPool); err != nil {
		return nil, prefixed(cc.namespace, cc.claimName, fmt.Errorf("%w: %w", ErrInvalidArgument, err))
	}
	ctx, span := c.startSpan(ctx, "create_claim", cc.claimName)
	defer func() { endSpan(span, err) }()
	claim := buildClaim(warmPool, cc, time.Now())
	if v := tracing.AnnotationValue(ctx); v != "" {
		// The controller's spans of this claim join the caller's trace.
		claim.Annotations[agentsv1beta1.TraceContextAnnotation] = v
	}
	created, err := c.agents.ExtensionsV1beta1().SandboxClaims(cc.namespace).Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		return nil, prefixed(cc.namespace, cc.claimName, fmt.Errorf("%w: warm pool %q: %w", ErrClaimFailed, warmPool, err))
	}
	span.SetAttributes(attribute.String(AttrClaimName, created.Name))
	klog.FromContext(ctx).V(2).Info("Created sandbox claim", "claim", klog.KObj(created), "warmPool", warmPool)
	return created, nil
}

// waitUntilReady resolves the claim's Sandbox and waits for it to be Ready,
// both within one readyTimeout budget, then records its identity.
func (c *Client) waitUntilReady(ctx context.Context, sb *Sandbox, readyTimeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	sctx, span := c.startSpan(ctx, "resolve_sandbox_name", sb.claimName)
	name, claimIPs, err := c.waitForSandboxName(sctx, sb.namespace, sb.claimName)
	endSpan(span, err)
	if err != nil {
		return err
	}
	sctx, span = c.startSpan(ctx, "wait_for_sandbox_ready", sb.claimName)
	ready, err := c.waitForSandboxReady(sctx, sb.namespace, name, claimIPs)
	endSpan(span, err)
	if err != nil {
		return err
	}
	sb.setIdentity(ready, claimIPs)
	return nil
}

// Attach returns a handle on an existing claim, for example one created by
// another process that called Disconnect. It checks that the claim exists
// and that its Sandbox is Ready; a missing claim or Sandbox is
// ErrSandboxDeleted, an unbound or not Ready one ErrNotReady (or, with
// WithWaitForReady, a wait like Create's). Attach never deletes the claim;
// the returned handle's Close does.
func (c *Client) Attach(ctx context.Context, claimName string, opts ...AttachOption) (*Sandbox, error) {
	cc := createConfig{namespace: c.cfg.namespace, readyTimeout: c.cfg.readyTimeout}
	for _, o := range opts {
		if o != nil {
			o.applyAttach(&cc)
		}
	}
	sb := newSandbox(c, cc.namespace, claimName)
	if err := validateClaimRef(cc.namespace, claimName); err != nil {
		return nil, sb.wrap(err)
	}
	if cc.waitForReady {
		if err := c.waitUntilReady(ctx, sb, cc.readyTimeout); err != nil {
			return nil, sb.wrap(err)
		}
		return sb, nil
	}

	claim, err := c.agents.ExtensionsV1beta1().SandboxClaims(cc.namespace).Get(ctx, claimName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, sb.wrap(fmt.Errorf("%w: claim not found: %w", ErrSandboxDeleted, err))
	}
	if err != nil {
		return nil, sb.wrap(fmt.Errorf("getting claim: %w", err))
	}
	name := claim.Status.SandboxStatus.Name
	if name == "" {
		return nil, sb.wrap(fmt.Errorf("%w: claim is not bound to a sandbox; conditions: %s", ErrNotReady, claimConditions(claim)))
	}
	sandbox, err := c.agents.AgentsV1beta1().Sandboxes(cc.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, sb.wrap(fmt.Errorf("%w: sandbox %s not found: %w", ErrSandboxDeleted, name, err))
	}
	if err != nil {
		return nil, sb.wrap(fmt.Errorf("getting sandbox %s: %w", name, err))
	}
	if !c.sandboxServes(sandbox, claim.Status.SandboxStatus.PodIPs) && !c.wakesOnRequest(sandbox) {
		ready := apimeta.IsStatusConditionTrue(sandbox.Status.Conditions, agentsv1beta1.SandboxConditionReady.String())
		reason := "not Ready"
		if ready {
			reason = "Ready but has no pod IP"
		}
		return nil, sb.wrap(fmt.Errorf("%w: sandbox %s is %s; conditions: %s", ErrNotReady, name, reason, formatConditions(sandbox.Status.Conditions)))
	}
	sb.setIdentity(sandbox, claim.Status.SandboxStatus.PodIPs)
	return sb, nil
}

func (cc *createConfig) validate(warmPool string) error {
	var errs []error
	if msgs := validation.IsDNS1123Subdomain(warmPool); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("warm pool name %q: %v", warmPool, msgs))
	}
	if msgs := validation.IsDNS1123Label(cc.namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %v", cc.namespace, msgs))
	}
	if cc.claimName != "" {
		if msgs := validation.IsDNS1123Subdomain(cc.claimName); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("claim name %q: %v", cc.claimName, msgs))
		}
	}
	if cc.readyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ready timeout must be positive, got %v", cc.readyTimeout))
	}
	if cc.ttlAfterFinished != nil && *cc.ttlAfterFinished < 0 {
		errs = append(errs, fmt.Errorf("TTL after finished must not be negative, got %v", *cc.ttlAfterFinished))
	}
	switch cc.shutdownPolicy {
	case "", extensionsv1beta1.ShutdownPolicyDelete, extensionsv1beta1.ShutdownPolicyDeleteForeground, extensionsv1beta1.ShutdownPolicyRetain:
	default:
		errs = append(errs, fmt.Errorf("unknown shutdown policy %q", cc.shutdownPolicy))
	}
	return errors.Join(errs...)
}

// buildClaim renders the SandboxClaim that Create sends.
func buildClaim(warmPool string, cc createConfig, now time.Time) *extensionsv1beta1.SandboxClaim {
	labels := maps.Clone(cc.labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[agentsv1beta1.CreatedByLabel] = agentsv1beta1.CreatedByGoClient

	annotations := maps.Clone(cc.annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	if annotations[extensionsv1beta1.ClientFirstRequestedAtAnnotation] == "" {
		annotations[extensionsv1beta1.ClientFirstRequestedAtAnnotation] = now.UTC().Format(time.RFC3339Nano)
	}

	claim := &extensionsv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        cc.claimName,
			Namespace:   cc.namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: extensionsv1beta1.SandboxClaimSpec{
			WarmPoolRef: extensionsv1beta1.SandboxWarmPoolRef{Name: warmPool},
		},
	}
	if cc.claimName == "" {
		claim.GenerateName = ClaimGenerateName
	}
	if cc.shutdownTime != nil || cc.ttlAfterFinished != nil || cc.shutdownPolicy != "" {
		lc := &extensionsv1beta1.Lifecycle{ShutdownPolicy: cc.shutdownPolicy}
		if cc.shutdownTime != nil {
			t := metav1.NewTime(cc.shutdownTime.UTC())
			lc.ShutdownTime = &t
		}
		if cc.ttlAfterFinished != nil {
			secs := int32(min(math.Ceil(cc.ttlAfterFinished.Seconds()), math.MaxInt32))
			lc.TTLSecondsAfterFinished = &secs
		}
		claim.Spec.Lifecycle = lc
	}
	return claim
}

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

package sandboxwarmpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// A create whose response is lost (the API server restarted mid-request,
// a connection reset, a timeout, a 5xx) may or may not have stored the
// member. Counting it as failed, as kube-controller-manager does, makes
// the next pass create it again when it did land: measured by make chaos,
// a pool of 20 held 25 members after one kube-apiserver restart. Waiting
// for it as if it had landed wedges the pool for the expectations' TTL
// when it did not. So the pool asks the API server once, with a
// consistent list of its members, and then waits until its informer shows
// every member that list found (at most ExpectationsTTL) before it creates
// or deletes again.

// unknownCreates is, per pool key, the members a live list found that the
// informer did not show yet; listed is false until that list has run.
type unknownCreates struct {
	mu    sync.Mutex
	pools map[string]*unknownOutcome
}

type unknownOutcome struct {
	listed bool
	since  time.Time
	unseen []string // member names
}

func newUnknownCreates() *unknownCreates {
	return &unknownCreates{pools: map[string]*unknownOutcome{}}
}

// happened records that a create of key's pool ended with an unknown
// outcome.
func (u *unknownCreates) happened(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pools[key] = &unknownOutcome{}
}

// forget drops a deleted pool's record.
func (u *unknownCreates) forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.pools, key)
}

func (u *unknownCreates) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.pools)
}

// outcomeKnown reports whether the pool may act on its cache again: no
// create of unknown outcome is waiting, or every member the live list
// found is now in the cache (or ExpectationsTTL has passed: one deleted
// before the informer showed it is never shown). It runs the live list
// the first time it is asked after such a create; an error means the pool
// must retry later.
func (c *Controller) outcomeKnown(ctx context.Context, pool *extv1beta1.SandboxWarmPool, key string) (bool, error) {
	u := c.unknownCreates
	u.mu.Lock()
	rec, ok := u.pools[key]
	listed := ok && rec.listed
	u.mu.Unlock()
	if !ok {
		return true, nil
	}
	if !listed {
		unseen, err := c.liveUnseenMembers(ctx, pool)
		if err != nil {
			return false, fmt.Errorf("listing the members of pool %s after a create of unknown outcome: %w", pool.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Listed the pool's members after a create of unknown outcome", "notYetInCache", len(unseen))
		u.mu.Lock()
		rec.listed, rec.since, rec.unseen = true, c.opts.Clock.Now(), unseen
		u.mu.Unlock()
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	var still []string
	for _, name := range rec.unseen {
		if _, exists, _ := c.memberIndexer.GetByKey(pool.Namespace + "/" + name); !exists {
			still = append(still, name)
		}
	}
	rec.unseen = still
	if len(still) == 0 || c.opts.Clock.Since(rec.since) > controller.ExpectationsTTL {
		delete(u.pools, key)
		return true, nil
	}
	return false, nil
}

// liveUnseenMembers lists the pool's members from the API server (a
// consistent read, not the cache) and returns the names of those its
// informer does not show.
func (c *Controller) liveUnseenMembers(ctx context.Context, pool *extv1beta1.SandboxWarmPool) ([]string, error) {
	list, err := c.client.AgentsV1beta1().Sandboxes(pool.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{agentsv1beta1.WarmPoolSandboxLabel: agentsv1beta1.NameHash(pool.Name)}.String(),
	})
	if err != nil {
		return nil, err
	}
	var unseen []string
	for i := range list.Items {
		sb := &list.Items[i]
		if ref := controller.ControllerOfKind(sb, poolGroupKind); ref == nil || ref.UID != pool.UID {
			continue
		}
		if _, exists, _ := c.memberIndexer.GetByKey(sb.Namespace + "/" + sb.Name); !exists {
			unseen = append(unseen, sb.Name)
		}
	}
	return unseen, nil
}

// createRefused reports whether a create's error proves the object was not
// stored: the API server answered with a client error (refused, invalid,
// a conflict, throttled before it ran), or the connection was refused
// before anything was sent. Anything else (resets, EOF, timeouts, 5xx) may
// have stored it.
func createRefused(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code >= 400 && code < 500 && code != 408 && !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err)
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

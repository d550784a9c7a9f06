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

package api

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/agentsclient"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/serverjson"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestControllerClientReadsTheAPIServersJSON runs the controller's client
// (agentsclient, whose JSON decoding reads the API server's form by
// position: package serverjson) against the real API server. Every
// response and watch event of a Sandbox must be in the form it reads by
// position, so the fast path is the one taken (an API server that wrote
// another form would be decoded correctly, more slowly, and fail this
// test), and the client must decode them exactly as the generated
// clientset does.
func TestControllerClientReadsTheAPIServersJSON(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace
	controllerClient, err := agentsclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	fast := controllerClient.AgentsV1beta1().Sandboxes(ns)
	stock := env.Agents.AgentsV1beta1().Sandboxes(ns)

	// Three watches opened before the writes: the controller client's,
	// the generated clientset's and the raw stream.
	fastWatch, err := fast.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fastWatch.Stop()
	stockWatch, err := stock.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stockWatch.Stop()
	rawWatch, err := env.Agents.AgentsV1beta1().RESTClient().Get().Namespace(ns).Resource("sandboxes").
		Param("watch", "true").Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rawWatch.Close() }()

	// Writes through the controller client, each answer compared with
	// the generated clientset's read of the same revision.
	created, err := fast.Create(ctx, newSandbox(ns, "decoded"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameAsStock(ctx, t, stock, "create", created)
	labelled, err := fast.Patch(ctx, "decoded", types.MergePatchType, []byte(`{"metadata":{"labels":{"step":"two"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameAsStock(ctx, t, stock, "label patch", labelled)
	status, err := fast.Patch(ctx, "decoded", types.MergePatchType,
		[]byte(`{"status":{"podIPs":["127.0.0.9"],"conditions":[{"type":"Ready","status":"False","reason":"DependenciesNotReady","message":"m","lastTransitionTime":"2026-12-07T00:00:00Z"}]}}`),
		metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatal(err)
	}
	sameAsStock(ctx, t, stock, "status patch", status)
	got, err := fast.Get(ctx, "decoded", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameAsStock(ctx, t, stock, "get", got)
	fastList, err := fast.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stockList, err := stock.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stockList, fastList); diff != "" {
		t.Errorf("list decoded differently (-generated clientset +controller client):\n%s", diff)
	}
	if err := fast.Delete(ctx, "decoded", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// An error's Status body decodes into the same API error.
	_, fastErr := fast.Get(ctx, "decoded", metav1.GetOptions{})
	_, stockErr := stock.Get(ctx, "decoded", metav1.GetOptions{})
	if !apierrors.IsNotFound(fastErr) || fastErr.Error() != stockErr.Error() {
		t.Errorf("get after delete: %v; the generated clientset: %v", fastErr, stockErr)
	}

	// The bodies themselves are in the positional form.
	raw := env.Agents.AgentsV1beta1().RESTClient()
	body, err := raw.Get().Namespace(ns).Resource("sandboxes").Name("decoded").DoRaw(ctx)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("raw get after delete: %v, want NotFound", err)
	}
	if gvk, ok := serverjson.LeadingTypeMeta(body); !ok || gvk.Kind != "Status" {
		t.Errorf("the API server's error body is not read by position (%v, %v): %s", gvk, ok, body)
	}
	body, err = raw.Get().Namespace(ns).Resource("sandboxes").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := serverjson.LeadingTypeMeta(body); ok {
		// A list's keys are sorted too: apiVersion, items, kind. It is
		// read the stock way (lists are rare: a start or a relist).
		t.Logf("a list was read by position: %.120s", body)
	}

	// Four events (added, two writes, deleted): the same from both
	// clients, and every raw frame in the positional form.
	want := collect(ctx, t, "generated clientset", stockWatch, 4)
	if diff := cmp.Diff(want, collect(ctx, t, "controller client", fastWatch, 4)); diff != "" {
		t.Errorf("watch events decoded differently (-generated clientset +controller client):\n%s", diff)
	}
	frames := serverjson.Framer.NewFrameReader(rawWatch)
	buf := make([]byte, 1<<20)
	for i := range 4 {
		n, err := frames.Read(buf)
		if err != nil {
			t.Fatalf("raw watch frame %d: %v", i, err)
		}
		eventType, object, ok := serverjson.SplitWatchEvent(buf[:n])
		if !ok {
			t.Fatalf("raw watch frame %d is not in the API server's envelope form: %.200s", i, buf[:n])
		}
		if gvk, ok := serverjson.LeadingTypeMeta(object); !ok || gvk.Kind != "Sandbox" {
			t.Errorf("%s event's object is not read by position (%v, %v): %.200s", eventType, gvk, ok, object)
		}
	}
}

// sameAsStock fails when got is not what the generated clientset reads
// of the same object at the same revision.
func sameAsStock(ctx context.Context, t *testing.T, stock interface {
	Get(context.Context, string, metav1.GetOptions) (*agentsv1beta1.Sandbox, error)
}, what string, got *agentsv1beta1.Sandbox) {
	t.Helper()
	want, err := stock.Get(ctx, got.Name, metav1.GetOptions{ResourceVersion: got.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: decoded differently (-generated clientset +controller client):\n%s", what, diff)
	}
}

type watchedEvent struct {
	Type   watch.EventType
	Object *agentsv1beta1.Sandbox
}

func collect(ctx context.Context, t *testing.T, who string, w watch.Interface, n int) []watchedEvent {
	t.Helper()
	var events []watchedEvent
	for len(events) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("%s: watch closed after %d events", who, len(events))
			}
			sb, isSandbox := ev.Object.(*agentsv1beta1.Sandbox)
			if !isSandbox {
				t.Fatalf("%s: event %s of %T", who, ev.Type, ev.Object)
			}
			events = append(events, watchedEvent{ev.Type, sb})
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d events before the deadline: %v", who, len(events), n, ctx.Err())
		}
	}
	return events
}

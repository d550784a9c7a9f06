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

package controllermanager

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/eventsink"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestEventSinkOnTheAPIServer: the controllers' Event sink writes what
// events.k8s.io/v1 accepts. Repeats of an Event become one Event whose
// series counts them (a merge patch of series), an Event deleted
// meanwhile is created again with its series, and a note longer than the
// API's 1,024 bytes (an error text can be) is cut rather than refused.
func TestEventSinkOnTheAPIServer(t *testing.T) {
	env := framework.Setup(t)
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	sink := eventsink.New(env.ControllerKube.EventsV1(), eventsink.Options{Controller: "integration", SeriesFlush: 200 * time.Millisecond})
	var running sync.WaitGroup
	running.Go(func() { sink.Run(ctx) })
	defer running.Wait()
	defer cancel()

	cm, err := env.Kube.CoreV1().ConfigMaps(env.Namespace).Create(ctx,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "regarded"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	rec := sink.Recorder(scheme, "integration-controller", ktesting.NewLogger(t, ktesting.NewConfig()))

	for range 5 {
		rec.Eventf(cm, nil, corev1.EventTypeWarning, "Repeated", "Reconciling", "The same failure")
	}
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "LongNote", "Reconciling", "%s", strings.Repeat("e", 3000))
	repeated := waitForEvent(ctx, t, env, "Repeated", func(ev *eventsv1.Event) bool {
		return ev.Series != nil && ev.Series.Count == 5
	})
	long := waitForEvent(ctx, t, env, "LongNote", func(*eventsv1.Event) bool { return true })
	if len(long.Note) != 1024 {
		t.Errorf("long note stored with %d bytes, want 1024", len(long.Note))
	}
	if repeated.ReportingController != "integration-controller" || repeated.Regarding.UID != cm.UID {
		t.Errorf("Event %+v does not name its controller and object", repeated)
	}

	// The Event is gone (TTL, or someone deleted it): the next count
	// creates it again, series included.
	if err := env.Kube.EventsV1().Events(env.Namespace).Delete(ctx, repeated.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Repeated", "Reconciling", "The same failure")
	again := waitForEvent(ctx, t, env, "Repeated", func(ev *eventsv1.Event) bool {
		return ev.Series != nil && ev.Series.Count == 6
	})
	if again.Name != repeated.Name {
		t.Errorf("recreated as %s, want the series' own name %s", again.Name, repeated.Name)
	}
}

// waitForEvent waits until the only Event of reason in the test's
// namespace satisfies ok, and returns it.
func waitForEvent(ctx context.Context, t *testing.T, env *framework.Env, reason string, ok func(*eventsv1.Event) bool) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	var last string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var matching []*eventsv1.Event
		for i := range list.Items {
			if list.Items[i].Reason == reason {
				matching = append(matching, &list.Items[i])
			}
		}
		last = fmt.Sprintf("%d Events of reason %s", len(matching), reason)
		if len(matching) == 1 {
			last += fmt.Sprintf(", series %+v", matching[0].Series)
			if ok(matching[0]) {
				found = matching[0]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for the Event %s: %v (last seen: %s)", reason, err, last)
	}
	return found
}

// TestEventWritesStallWithoutPilingUp: while the API server does not
// answer Event writes, a controller that keeps acting holds a bounded
// number of goroutines and Events, and writes every Event once the API
// server answers again. client-go's broadcaster held a goroutine (and a
// copy of the Event) per Event until the write succeeded or two minutes
// of retries passed.
func TestEventWritesStallWithoutPilingUp(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 3*time.Minute)
	release := make(chan struct{})
	var released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	defer unblock()
	var stalled atomic.Int64
	ctrls := framework.StartControllersWithOptions(t, env, framework.ControllerOptions{
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return framework.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
				if strings.HasPrefix(req.URL.Path, "/apis/events.k8s.io/") && req.Method != http.MethodGet {
					stalled.Add(1)
					select {
					case <-release:
					case <-req.Context().Done():
						return nil, req.Context().Err()
					}
				}
				return rt.RoundTrip(req)
			})
		},
	}, framework.ControllerSandbox)

	const n = 120
	for i := range n {
		sb := &agentsv1beta1.Sandbox{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sb-%03d", i)},
			Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			}}},
		}
		if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Every Sandbox's Pod is created, each with its Event, none written.
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := env.Kube.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == n, nil
	})
	if err != nil {
		t.Fatalf("the controller did not create %d Pods: %v", n, err)
	}
	if got := stalled.Load(); got == 0 {
		t.Fatal("no Event write reached the API server's stalled transport")
	}
	held := goroutinesWriting(t)
	t.Logf("%d goroutines in Event code while %d Event writes stall", held, stalled.Load())
	if held > 14 {
		t.Errorf("%d goroutines hold Events while the API server stalls, want at most 14 (the sink runs 10: its Run, eight writers, the series flush; a sync may be recording)", held)
	}

	unblock()
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		created := 0
		for _, ev := range list.Items {
			if ev.Reason == "SuccessfulCreate" && ev.Regarding.Kind == "Sandbox" && strings.HasPrefix(ev.Note, "Created Pod") {
				created++
			}
		}
		return created == n, nil
	})
	if err != nil {
		t.Fatalf("the %d Pod-created Events were not all written after the API server answered: %v", n, err)
	}
	if got := ctrls.Counter(t, "agent_sandbox_event_writes_total", "result", "dropped"); got != 0 {
		t.Errorf("%v Events dropped; the queue holds 1,000", got)
	}
}

// goroutinesWriting counts the goroutines of this process inside Event
// recording code: the sink's, or client-go's broadcaster's.
func goroutinesWriting(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for g := range strings.SplitSeq(buf.String(), "\n\n") {
		if strings.Contains(g, "/pkg/controller/eventsink.") || strings.Contains(g, "k8s.io/client-go/tools/events.") {
			n++
		}
	}
	return n
}

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
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"

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
	sink := eventsink.New(env.Kube.EventsV1(), eventsink.Options{Controller: "integration", SeriesFlush: 200 * time.Millisecond})
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

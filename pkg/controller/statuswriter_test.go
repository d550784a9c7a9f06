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

package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

type testStatus struct {
	Phase string `json:"phase,omitempty"`
	Count int    `json:"count,omitempty"`
}

// recordingPatcher is a PatchStatusFunc that records what it is sent and
// answers err.
type recordingPatcher struct {
	sent []string
	err  error
}

func (p *recordingPatcher) patch(_ context.Context, namespace, name string, body []byte) error {
	p.sent = append(p.sent, namespace+"/"+name+" "+string(body))
	return p.err
}

func TestStatusWriter(t *testing.T) {
	ctx := context.Background()
	obj := &metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "uid-a", ResourceVersion: "1"}
	p := &recordingPatcher{}
	w := NewStatusWriter[testStatus](p.patch, nil, nil)
	asked := 0
	noHold := func() StatusHold { asked++; return StatusHold{} }

	// Equal status: nothing sent, the hold is not even asked.
	res, err := w.Write(ctx, obj, testStatus{Phase: "Up"}, testStatus{Phase: "Up"}, noHold)
	if err != nil || res.Wrote || asked != 0 {
		t.Fatalf("equal status: %+v, %v, hold asked %d times", res, err, asked)
	}

	// A change is sent as a merge patch of the status subresource.
	res, err = w.Write(ctx, obj, testStatus{Phase: "Starting"}, testStatus{Phase: "Up", Count: 2}, noHold)
	if err != nil || !res.Wrote {
		t.Fatalf("change: %+v, %v", res, err)
	}
	// The same change computed again from the same cached copy (the
	// informer has not shown the write): not sent twice.
	res, err = w.Write(ctx, obj, testStatus{Phase: "Starting"}, testStatus{Phase: "Up", Count: 2}, noHold)
	if err != nil || res.Wrote {
		t.Fatalf("repeat from the same cached copy: %+v, %v", res, err)
	}
	if w.Pending() != 1 {
		t.Errorf("Pending %d, want 1", w.Pending())
	}
	// Once the cache moved on, the cache is the truth again: a change from
	// the new copy is sent, even if equal to the one remembered.
	obj.ResourceVersion = "2"
	res, err = w.Write(ctx, obj, testStatus{Phase: "Starting"}, testStatus{Phase: "Up", Count: 2}, noHold)
	if err != nil || !res.Wrote {
		t.Fatalf("after the cache moved on: %+v, %v", res, err)
	}
	want := []string{
		`ns/a {"status":{"count":2,"phase":"Up"}}`,
		`ns/a {"status":{"count":2,"phase":"Up"}}`,
	}
	if diff := cmp.Diff(want, p.sent); diff != "" {
		t.Errorf("patches (-want,+got):\n%s", diff)
	}
}

func TestStatusWriterHolds(t *testing.T) {
	ctx := context.Background()
	obj := &metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "uid-a", ResourceVersion: "1"}
	old, changed := testStatus{Phase: "Starting"}, testStatus{Phase: "Up"}
	for name, tc := range map[string]struct {
		hold        StatusHold
		wantWrote   bool
		wantRequeue time.Duration
	}{
		"no hold":          {hold: StatusHold{}, wantWrote: true},
		"held for a time":  {hold: StatusHold{For: 3 * time.Second}, wantRequeue: 3 * time.Second},
		"until next write": {hold: StatusHold{UntilNextWrite: true}},
	} {
		t.Run(name, func(t *testing.T) {
			p := &recordingPatcher{}
			w := NewStatusWriter[testStatus](p.patch, nil, nil)
			res, err := w.Write(ctx, obj, old, changed, func() StatusHold { return tc.hold })
			if err != nil {
				t.Fatal(err)
			}
			if res.Wrote != tc.wantWrote || res.RequeueAfter != tc.wantRequeue || (len(p.sent) == 1) != tc.wantWrote {
				t.Errorf("got %+v with %d patches, want wrote %v requeue %s", res, len(p.sent), tc.wantWrote, tc.wantRequeue)
			}
			if !tc.wantWrote && w.Pending() != 0 {
				t.Error("a held change must not be recorded as written")
			}
		})
	}
}

func TestStatusWriterErrors(t *testing.T) {
	ctx := context.Background()
	obj := &metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "uid-a", ResourceVersion: "1"}
	old, changed := testStatus{Phase: "Starting"}, testStatus{Phase: "Up"}

	// The object went away meanwhile: not an error, its next event says so.
	gone := &recordingPatcher{err: apierrors.NewNotFound(schema.GroupResource{Resource: "things"}, "a")}
	w := NewStatusWriter[testStatus](gone.patch, nil, nil)
	if res, err := w.Write(ctx, obj, old, changed, nil); err != nil || !res.Wrote {
		t.Errorf("NotFound: %+v, %v", res, err)
	}
	// Nor is it remembered: the object's delete event may have been
	// handled (Forget) before this pass wrote, and nothing else would ever
	// drop a record of a UID that is gone.
	if n := w.Pending(); n != 0 {
		t.Errorf("NotFound: %d writes remembered, want 0", n)
	}

	// A failed write is returned and not remembered, so the retry sends it.
	failing := &recordingPatcher{err: errors.New("boom")}
	w = NewStatusWriter[testStatus](failing.patch, nil, nil)
	if _, err := w.Write(ctx, obj, old, changed, nil); err == nil {
		t.Fatal("want the patch error")
	}
	failing.err = nil
	if res, err := w.Write(ctx, obj, old, changed, nil); err != nil || !res.Wrote || len(failing.sent) != 2 {
		t.Errorf("retry after a failure: %+v, %v, %d patches sent", res, err, len(failing.sent))
	}
}

func TestStatusWriterBodyAndForget(t *testing.T) {
	ctx := context.Background()
	obj := &metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "uid-a", ResourceVersion: "1"}
	p := &recordingPatcher{}
	// A controller's own body: every field, zero included.
	body := func(_, s testStatus) ([]byte, bool, error) {
		return []byte(`{"status":{"phase":"` + s.Phase + `","count":0}}`), true, nil
	}
	w := NewStatusWriter(p.patch, body, nil)
	if _, err := w.Write(ctx, obj, testStatus{Count: 1}, testStatus{}, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`ns/a {"status":{"phase":"","count":0}}`}, p.sent); diff != "" {
		t.Errorf("patches (-want,+got):\n%s", diff)
	}
	// Deleted, seen through a tombstone: the record goes.
	w.Forget(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: &metav1.ObjectMeta{UID: "uid-a"}})
	if w.Pending() != 0 {
		t.Errorf("Pending %d after Forget, want 0", w.Pending())
	}
}

func TestFirstStatusHold(t *testing.T) {
	now := time.Unix(10_000, 0)
	obj := &metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(now.Add(-time.Second))}
	for name, tc := range map[string]struct {
		hasStatus, starting bool
		delay               time.Duration
		want                StatusHold
	}{
		"starting, first status":    {starting: true, delay: 5 * time.Second, want: StatusHold{For: 4 * time.Second}},
		"already has a status":      {hasStatus: true, starting: true, delay: 5 * time.Second},
		"news other than starting":  {delay: 5 * time.Second},
		"delay off":                 {starting: true},
		"delay passed since create": {starting: true, delay: time.Second},
	} {
		if got := FirstStatusHold(obj, tc.hasStatus, tc.starting, tc.delay, now); got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}

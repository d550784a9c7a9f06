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

package eventsink

import (
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/reference"
	"k8s.io/klog/v2"
)

// The API server's limits on an Event's fields (events.k8s.io/v1
// validation): a longer note or instance is refused, so the Event would
// be lost.
const (
	noteLimit     = 1024
	instanceLimit = 128
)

// EventRecorder is client-go's events.EventRecorder, declared here so the
// controller does not import k8s.io/client-go/tools/events (which links
// client-go's scheme of every API group, see package clients). client-go's
// recorders, events.FakeRecorder among them, satisfy it.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Recorder builds Events for one reporting controller and hands them to
// its Sink. It is an EventRecorder, so controllers and their tests
// (events.FakeRecorder) do not know about the sink.
type Recorder struct {
	sink       *Sink
	scheme     *runtime.Scheme
	controller string
	instance   string
	logger     klog.Logger
}

var _ EventRecorder = (*Recorder)(nil)

// Recorder returns a recorder reporting as controller from this host.
// scheme names the kinds of the objects Events regard and relate;
// logger logs each Event at V(3).
func (s *Sink) Recorder(scheme *runtime.Scheme, controller string, logger klog.Logger) *Recorder {
	hostname, _ := os.Hostname()
	return &Recorder{sink: s, scheme: scheme, controller: controller,
		instance: truncate(controller+"-"+hostname, instanceLimit), logger: logger}
}

// Eventf records an Event about regarding (and related, may be nil)
// without waiting for it to be written.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	now := r.sink.opts.Clock.Now()
	message := truncate(fmt.Sprintf(note, args...), noteLimit)
	regardingRef, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		r.logger.Error(err, "Not recording an Event: no reference to its object", "reason", reason, "note", message)
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		// An Event without its related object beats no Event.
		if relatedRef, err = reference.GetReference(r.scheme, related); err != nil {
			r.logger.V(4).Info("Recording an Event without its related object", "err", err)
		}
	}
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		r.logger.Error(nil, "Not recording an Event of an unknown type", "type", eventtype, "reason", reason)
		return
	}
	if logger := r.logger.V(3); logger.Enabled() {
		logger.Info("Event occurred", "object", klog.KRef(regardingRef.Namespace, regardingRef.Name),
			"kind", regardingRef.Kind, "type", eventtype, "reason", reason, "action", action, "note", message)
	}
	namespace := regardingRef.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	r.sink.record(&eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: eventName(regardingRef.Name, now.UnixNano()), Namespace: namespace},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *regardingRef,
		Related:             relatedRef,
		Note:                message,
		Type:                eventtype,
	})
}

// eventName is "<object>.<time in hex>", kubectl's and client-go's
// naming; a long object name is cut so the name stays valid (client-go
// falls back to a UUID instead, which needs a dependency).
func eventName(object string, unixNano int64) string {
	suffix := fmt.Sprintf(".%x", unixNano)
	if len(object)+len(suffix) > validation.DNS1123SubdomainMaxLength {
		// A label may not end in '-' or '.'.
		object = strings.TrimRight(object[:validation.DNS1123SubdomainMaxLength-len(suffix)], "-.")
	}
	return object + suffix
}

// truncate cuts s to at most limit bytes on a rune boundary.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

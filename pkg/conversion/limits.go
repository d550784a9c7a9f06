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

package conversion

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Limits bound what any client can make the conversion webhook hold. The
// webhook port is reachable from every Pod that can reach the
// controller (the API server's source address cannot be told apart by a
// NetworkPolicy), and the controller shares its memory with every
// informer cache. So:
//
//   - a review larger than MaxRequestBytes is refused (413) before its body
//     is read;
//   - a review of at most smallReviewBytes (every single-object review the
//     API server sends: etcd stores objects of at most 1.5 MiB) takes one
//     of MaxInFlight slots;
//   - a larger review (a v1alpha1 list is converted in one review) or one
//     of unknown length reserves its declared size (MaxRequestBytes when
//     unknown) out of MaxInFlightBytes;
//   - a review that finds no room is answered 503 with Retry-After at once,
//     never queued. The API server's client retries such answers (client-go
//     honours Retry-After on 429 and 5xx), so shedding costs it a second,
//     not a failed request;
//   - ReadTimeout bounds reading one request, headers and body, so a
//     client trickling its body holds its slot or bytes that long at most.
//
// Large and small reviews are admitted from separate pools so that floods
// of large or slow-declared-large posts cannot starve the API server's
// ordinary single-object reviews. What a review costs after it is read
// (decoding and converting roughly triples it) is bounded by the same
// admission, held until the answer is written: the worst case is about
// 4 × (MaxInFlightBytes + MaxInFlight × smallReviewBytes).
type Limits struct {
	// MaxRequestBytes is the largest ConversionReview accepted.
	MaxRequestBytes int64
	// MaxInFlight bounds reviews of up to smallReviewBytes being read,
	// converted or answered at once.
	MaxInFlight int
	// MaxInFlightBytes bounds the summed declared sizes of larger reviews
	// in flight; it must hold at least one review of MaxRequestBytes.
	MaxInFlightBytes int64
	// ReadTimeout bounds reading one request, headers and body.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
}

// smallReviewBytes separates the two admission pools.
const smallReviewBytes = 1 << 20

// DefaultLimits are the controller's defaults (and its flags' defaults).
// 32 MiB holds a v1alpha1 list page of several thousand typical Sandboxes;
// a client listing more in one page gets an error naming the webhook and
// should paginate (limit=500, as kubectl and informers do) or the operator
// raises --webhook-max-request-bytes together with the memory limit.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestBytes:  32 << 20,
		MaxInFlight:      32,
		MaxInFlightBytes: 64 << 20,
		ReadTimeout:      10 * time.Second,
		IdleTimeout:      90 * time.Second,
	}
}

// Validate reports limits that would refuse every review or bound nothing.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxRequestBytes <= 0 {
		errs = append(errs, errors.New("the webhook's maximum request size must be > 0"))
	}
	if l.MaxInFlight <= 0 {
		errs = append(errs, errors.New("the webhook's maximum in-flight reviews must be > 0"))
	}
	if l.MaxInFlightBytes < l.MaxRequestBytes {
		errs = append(errs, fmt.Errorf("the webhook's in-flight bytes (%d) must hold one review of the maximum request size (%d)", l.MaxInFlightBytes, l.MaxRequestBytes))
	}
	if l.ReadTimeout <= 0 || l.IdleTimeout <= 0 {
		errs = append(errs, errors.New("the webhook's read and idle timeouts must be > 0"))
	}
	return errors.Join(errs...)
}

// limitedHandler admits reviews within Limits and hands them to
// HandleReview.
type limitedHandler struct {
	limits Limits
	small  chan struct{} // a token per small review in flight
	large  atomic.Int64  // declared bytes of large reviews in flight
}

func newLimitedHandler(l Limits) *limitedHandler {
	return &limitedHandler{limits: l, small: make(chan struct{}, l.MaxInFlight)}
}

// admit reserves room for a review declaring size bytes (-1: unknown),
// without waiting; release gives it back.
func (h *limitedHandler) admit(size int64) (release func(), ok bool) {
	if size >= 0 && size <= smallReviewBytes {
		select {
		case h.small <- struct{}{}:
			return func() { <-h.small }, true
		default:
			return nil, false
		}
	}
	if size < 0 {
		size = h.limits.MaxRequestBytes
	}
	for {
		cur := h.large.Load()
		if cur+size > h.limits.MaxInFlightBytes {
			return nil, false
		}
		if h.large.CompareAndSwap(cur, cur+size) {
			return func() { h.large.Add(-size) }, true
		}
	}
}

func (h *limitedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context())
	if r.Method != http.MethodPost {
		http.Error(w, "conversion reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > h.limits.MaxRequestBytes {
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("conversion review of %d bytes is larger than the webhook's %d", r.ContentLength, h.limits.MaxRequestBytes), http.StatusRequestEntityTooLarge)
		return
	}
	release, ok := h.admit(r.ContentLength)
	if !ok {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the conversion webhook is busy", http.StatusServiceUnavailable)
		return
	}
	defer release()
	body, err := readReview(w, r, h.limits.MaxRequestBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, fmt.Sprintf("conversion review larger than %d bytes", h.limits.MaxRequestBytes), http.StatusRequestEntityTooLarge)
		case errors.Is(err, os.ErrDeadlineExceeded):
			http.Error(w, "reading the conversion review timed out", http.StatusRequestTimeout)
		default:
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	resp, status, msg := HandleReview(body)
	if status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	if _, err := w.Write(resp); err != nil {
		logger.V(2).Info("Writing conversion response failed", "err", err)
	}
}

// readReview reads the body into one buffer of its declared length (the
// admission already reserved it), or up to limit when the length is
// unknown.
func readReview(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

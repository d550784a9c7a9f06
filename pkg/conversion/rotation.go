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
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	apiextensionsv1client "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/apiextensions/v1"
	kubeinformers "github.com/agentsandbox/agent-sandbox/generated/kube/informers/externalversions"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
)

// Keys of the certificate Secret. tls.crt, tls.key and ca.crt are the
// pair every replica serves and its CA (the kubernetes.io/tls layout);
// ca-bundle.crt is every CA the CRDs trust; the next-* keys are a renewed
// pair waiting for its CA to be trusted everywhere, published at
// next-published-at (RFC 3339).
const (
	secretCA        = "ca.crt"
	secretCert      = "tls.crt"
	secretKey       = "tls.key"
	secretBundle    = "ca-bundle.crt"
	secretNextCA    = "next-ca.crt"
	secretNextCert  = "next-tls.crt"
	secretNextKey   = "next-tls.key"
	secretNextSince = "next-published-at"
)

const (
	// maxBundleCAs: the current CA, the next one and the previous one.
	maxBundleCAs = 3
	// Start-up retries (replicas racing to create the Secret) and the
	// backoff between failed syncs.
	syncFirstTry = 100 * time.Millisecond
	syncAttempts = 8
	retryMax     = 30 * time.Second
	// syncTimeout bounds the API calls of one sync.
	syncTimeout = 30 * time.Second
)

// CertRotator keeps the webhook's self-managed certificate in one Secret
// shared by every replica, serves it, and keeps the CRDs' caBundle
// trusting it. Renewal happens in two steps so that no replica ever
// serves a certificate the API server does not trust:
//
//  1. RenewBefore the current certificate expires, a new CA and pair are
//     minted and published as "next"; the CRDs' caBundle trusts both CAs.
//     Every replica still serves the current pair.
//  2. PromoteAfter later, and only once every CRD's caBundle holds the
//     new CA, the next pair becomes current. Replicas learn of it from a
//     watch on the Secret and switch; until they do they serve the old
//     pair, whose CA stays in the caBundle until it expires.
//
// All state is in the Secret and every write is an update at the
// resourceVersion read, so replicas racing to renew or promote agree on
// one outcome: the loser's write conflicts and it adopts the winner's.
type CertRotator struct {
	Kube kubeclient.Interface
	CRDs apiextensionsv1client.CustomResourceDefinitionsGetter
	// CRDMetadata, if set, lets the periodic check read the CRDs' metadata
	// alone while they have not changed since they were last seen
	// trusting the bundle (caInjector); nil reads them whole every time.
	CRDMetadata metadata.Interface
	Namespace   string
	Secret      string
	DNSNames    []string
	IPs         []net.IP
	Endpoint    Endpoint

	// RenewBefore: a pair this close to expiry gets a successor.
	RenewBefore time.Duration
	// PromoteAfter: how long a new CA is trusted before any replica serves
	// a certificate it signed (the API servers' CRD watch must see it).
	PromoteAfter time.Duration
	// CheckInterval: how often expiry and a pending promotion are checked
	// besides Secret changes.
	CheckInterval time.Duration

	serving  atomic.Pointer[tls.Certificate]
	kick     chan struct{}
	injector *caInjector
}

// Default rotation timing.
const (
	DefaultRenewBefore   = 30 * 24 * time.Hour
	DefaultPromoteAfter  = 5 * time.Minute
	DefaultCheckInterval = time.Minute
)

// GetCertificate is a tls.Config.GetCertificate serving the current pair.
func (r *CertRotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := r.serving.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}

// Start makes sure the Secret holds a valid pair, serves it and injects
// the CA bundle, then keeps doing so in the background until ctx is done.
func (r *CertRotator) Start(ctx context.Context) error {
	if r.RenewBefore <= 0 {
		r.RenewBefore = DefaultRenewBefore
	}
	if r.PromoteAfter <= 0 {
		r.PromoteAfter = DefaultPromoteAfter
	}
	if r.CheckInterval <= 0 {
		r.CheckInterval = DefaultCheckInterval
	}
	r.kick = make(chan struct{}, 1)
	backoff := wait.Backoff{Duration: syncFirstTry, Factor: 2, Jitter: 0.5, Steps: syncAttempts}
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		last = r.sync(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("webhook certificate: %w (last error: %v)", err, last)
	}

	// A watch on the one Secret: a rotation another replica wrote is
	// served here within the watch's latency, not at the next check.
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(r.Kube, 0,
		kubeinformers.WithNamespace(r.Namespace),
		kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.Secret).String()
		}))
	informer := factory.Core().V1().Secrets().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.poke() },
		UpdateFunc: func(any, any) { r.poke() },
		DeleteFunc: func(any) { r.poke() },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	go func() {
		defer factory.Shutdown()
		r.loop(ctx)
	}()
	return nil
}

func (r *CertRotator) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *CertRotator) loop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(r.CheckInterval)
	defer ticker.Stop()
	var retry <-chan time.Time
	delay := syncFirstTry
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-r.kick:
		case <-retry:
		}
		if err := r.sync(ctx); err != nil {
			if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
				logger.Error(err, "Keeping the webhook certificate", "secret", klog.KRef(r.Namespace, r.Secret), "retryIn", delay)
			}
			retry = time.After(delay)
			delay = min(2*delay, retryMax)
			continue
		}
		retry, delay = nil, syncFirstTry
	}
}

// certState is what the Secret says.
type certState struct {
	cur, next *Certs
	nextSince time.Time
	bundle    []*x509.Certificate
}

func readState(s *corev1.Secret) certState {
	if s == nil {
		return certState{}
	}
	d := s.Data
	st := certState{cur: &Certs{CA: d[secretCA], Cert: d[secretCert], Key: d[secretKey]}}
	if len(d[secretNextCert]) > 0 {
		st.next = &Certs{CA: d[secretNextCA], Cert: d[secretNextCert], Key: d[secretNextKey]}
		st.nextSince, _ = time.Parse(time.RFC3339, string(d[secretNextSince]))
	}
	st.bundle, _ = parseCerts(d[secretBundle])
	return st
}

func (st certState) data() map[string][]byte {
	d := map[string][]byte{secretBundle: encodeCerts(st.bundle)}
	if st.cur != nil {
		d[secretCA], d[secretCert], d[secretKey] = st.cur.CA, st.cur.Cert, st.cur.Key
	}
	if st.next != nil {
		d[secretNextCA], d[secretNextCert], d[secretNextKey] = st.next.CA, st.next.Cert, st.next.Key
		d[secretNextSince] = []byte(st.nextSince.UTC().Format(time.RFC3339))
	}
	return d
}

// sync reads the Secret (from the API server, not a cache: a stale view
// must not be served or injected), moves the rotation on if due, writes
// it back, then serves the current pair and injects the bundle.
func (r *CertRotator) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	logger := klog.FromContext(ctx)
	now := time.Now()
	secrets := r.Kube.CoreV1().Secrets(r.Namespace)
	s, err := secrets.Get(ctx, r.Secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s = nil
	case err != nil:
		return fmt.Errorf("reading the webhook certificate secret: %w", err)
	}
	st := readState(s)

	switch {
	case !st.cur.valid(r.DNSNames, r.IPs, now):
		// Nothing usable is served: there is no trust to keep.
		c, err := NewCerts(r.DNSNames, r.IPs, now)
		if err != nil {
			return err
		}
		st.cur, st.next = c, nil
		logger.Info("Created a webhook certificate", "secret", klog.KRef(r.Namespace, r.Secret))
	case st.next != nil && !st.next.valid(r.DNSNames, r.IPs, now):
		st.next = nil
	case st.next == nil && r.expiring(st.cur, now):
		c, err := NewCerts(r.DNSNames, r.IPs, now)
		if err != nil {
			return err
		}
		st.next, st.nextSince = c, now
		logger.Info("Published the next webhook CA; its certificate is served after the CA is trusted", "promoteAfter", r.PromoteAfter)
	case st.next != nil && !now.Before(st.nextSince.Add(r.PromoteAfter)):
		trusted, err := r.trusted(ctx, st.next.CA)
		if err != nil {
			return err
		}
		if trusted {
			st.cur, st.next = st.next, nil
			logger.Info("Serving the renewed webhook certificate")
		} else {
			// Not injected yet (its publisher stopped in between): count
			// the wait from the injection below.
			st.nextSince = now
		}
	}
	st.bundle = r.bundle(st, now)

	if s == nil {
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.Secret, Namespace: r.Namespace},
			Type:       corev1.SecretTypeTLS, Data: st.data(),
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating the webhook certificate secret: %w", err)
		}
	} else if !sameData(s.Data, st.data()) {
		s.Data = st.data()
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating the webhook certificate secret: %w", err)
		}
	}
	if err := r.serve(st.cur); err != nil {
		return err
	}
	if r.injector == nil {
		r.injector = &caInjector{crds: r.CRDs, meta: r.CRDMetadata}
	}
	return r.injector.inject(ctx, encodeCerts(st.bundle), r.Endpoint)
}

func (r *CertRotator) expiring(c *Certs, now time.Time) bool {
	leaf, _, err := c.leaf()
	return err != nil || !now.Add(r.RenewBefore).Before(leaf.NotAfter)
}

// bundle is the current CA, the next one, and previous ones until they
// expire: a replica that has not yet switched to the current pair still
// serves one signed by a previous CA. The order is stable (oldest first,
// new CAs appended), so a promotion, which changes no CA, does not
// rewrite the CRDs (each rewrite rebuilds the API server's storage for
// them).
func (r *CertRotator) bundle(st certState, now time.Time) []*x509.Certificate {
	var keep []*x509.Certificate
	if _, ca, err := st.cur.leaf(); err == nil {
		keep = append(keep, ca)
	}
	if st.next != nil {
		if _, ca, err := st.next.leaf(); err == nil {
			keep = append(keep, ca)
		}
	}
	kept := func(c *x509.Certificate) bool {
		for _, k := range keep {
			if bytes.Equal(k.Raw, c.Raw) {
				return true
			}
		}
		return false
	}
	var out []*x509.Certificate
	add := func(c *x509.Certificate) {
		for _, have := range out {
			if bytes.Equal(have.Raw, c.Raw) {
				return
			}
		}
		out = append(out, c)
	}
	for _, c := range st.bundle {
		if now.Before(c.NotAfter) || kept(c) {
			add(c)
		}
	}
	for _, c := range keep {
		add(c)
	}
	// Over the cap: drop the oldest previous CAs, never the current or
	// next one.
	for i := 0; len(out) > maxBundleCAs && i < len(out); {
		if kept(out[i]) {
			i++
			continue
		}
		out = append(out[:i], out[i+1:]...)
	}
	return out
}

func (r *CertRotator) serve(c *Certs) error {
	if cur := r.serving.Load(); cur != nil && bytes.Equal(cur.Certificate[0], firstDER(c.Cert)) {
		return nil
	}
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return err
	}
	r.serving.Store(&pair)
	return nil
}

// trusted reports whether every CRD converted by webhook trusts ca.
func (r *CertRotator) trusted(ctx context.Context, ca []byte) (bool, error) {
	for _, name := range CRDNames {
		crd, err := r.CRDs.CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conv := crd.Spec.Conversion
		if conv == nil || conv.Strategy != apiextensionsv1.WebhookConverter {
			continue
		}
		if conv.Webhook == nil || conv.Webhook.ClientConfig == nil || !BundleHas(conv.Webhook.ClientConfig.CABundle, ca) {
			return false, nil
		}
	}
	return true, nil
}

func firstDER(certPEM []byte) []byte {
	certs, err := parseCerts(certPEM)
	if err != nil || len(certs) == 0 {
		return nil
	}
	return certs[0].Raw
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

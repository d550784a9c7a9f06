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
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
)

type rotationFixture struct {
	kube *fake.Clientset
	ext  *fake.Clientset
	ips  []net.IP
}

func newRotationFixture() *rotationFixture {
	f := &rotationFixture{kube: fake.NewSimpleClientset(), ext: fake.NewSimpleClientset(), ips: []net.IP{net.ParseIP("127.0.0.1")}}
	for _, name := range CRDNames {
		_, _ = f.ext.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter, Webhook: &apiextensionsv1.WebhookConversion{},
			}},
		}, metav1.CreateOptions{})
	}
	return f
}

func (f *rotationFixture) replica() *CertRotator {
	return &CertRotator{
		Kube: f.kube, CRDs: f.ext.ApiextensionsV1(), Namespace: "ns", Secret: "certs", IPs: f.ips,
		Endpoint:    Endpoint{URL: "https://127.0.0.1:9443/convert"},
		RenewBefore: DefaultRenewBefore, PromoteAfter: time.Hour, CheckInterval: time.Hour,
	}
}

func (f *rotationFixture) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := f.kube.CoreV1().Secrets("ns").Get(context.Background(), "certs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *rotationFixture) crdBundles(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, name := range CRDNames {
		crd, err := f.ext.ApiextensionsV1().CustomResourceDefinitions().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, crd.Spec.Conversion.Webhook.ClientConfig.CABundle)
	}
	return out
}

func servedDER(t *testing.T, r *CertRotator) []byte {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate[0]
}

// A renewal publishes the new CA before anything serves a certificate it
// signed, and keeps the old CA trusted after the switch.
func TestRotationPublishesBeforeServing(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture()
	now := time.Now()
	old, err := NewCertsUntil(nil, f.ips, now, now.Add(DefaultRenewBefore-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.kube.CoreV1().Secrets("ns").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "certs", Namespace: "ns"},
		Data:       map[string][]byte{secretCA: old.CA, secretCert: old.Cert, secretKey: old.Key},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.replica(), f.replica()

	// Step 1: the next pair is published, its CA trusted, nothing served.
	if err := a.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.sync(ctx); err != nil {
		t.Fatal(err)
	}
	s := f.secret(t)
	if len(s.Data[secretNextCert]) == 0 {
		t.Fatal("a pair inside the renewal margin got no successor")
	}
	for _, r := range []*CertRotator{a, b} {
		if !bytes.Equal(servedDER(t, r), firstDER(old.Cert)) {
			t.Error("a replica serves the next certificate before its CA was trusted for PromoteAfter")
		}
	}
	for _, bundle := range f.crdBundles(t) {
		if !BundleHas(bundle, old.CA) || !BundleHas(bundle, s.Data[secretNextCA]) {
			t.Fatal("the CRDs do not trust both the current and the next CA")
		}
	}
	next := s.Data[secretNextCert]

	// Not promoted while a CRD does not trust the next CA yet.
	a.PromoteAfter = time.Nanosecond
	crd, _ := f.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, CRDNames[0], metav1.GetOptions{})
	crd.Spec.Conversion.Webhook.ClientConfig.CABundle = old.CA
	if _, err := f.ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(servedDER(t, a), firstDER(next)) || len(f.secret(t).Data[secretNextCert]) == 0 {
		t.Fatal("promoted although a CRD did not trust the next CA")
	}

	// Step 2: promoted; the other replica follows on its next sync (the
	// Secret watch triggers it); the old CA stays trusted.
	if err := a.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(servedDER(t, a), firstDER(next)) {
		t.Fatal("the next pair was not promoted after PromoteAfter")
	}
	if bytes.Equal(servedDER(t, b), firstDER(next)) {
		t.Fatal("fixture: b switched without a sync")
	}
	if err := b.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(servedDER(t, b), firstDER(next)) {
		t.Error("the other replica does not serve the promoted pair after a sync")
	}
	s = f.secret(t)
	if len(s.Data[secretNextCert]) != 0 {
		t.Error("the promoted pair is still pending")
	}
	for _, bundle := range f.crdBundles(t) {
		if !BundleHas(bundle, old.CA) || !BundleHas(bundle, s.Data[secretCA]) {
			t.Error("after the switch the CRDs must trust the new CA and still the old one")
		}
	}
}

// Previous CAs leave the bundle once expired, and it never grows past
// maxBundleCAs.
func TestBundleDropsExpiredCAs(t *testing.T) {
	f := newRotationFixture()
	now := time.Now()
	var cas [][]byte
	var pairs []*Certs
	st := certState{}
	for i := range 5 {
		c, err := NewCertsUntil(nil, f.ips, now, now.Add(time.Duration(i+1)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, c.CA)
		pairs = append(pairs, c)
		prev, _ := parseCerts(c.CA)
		st.bundle = append(st.bundle, prev...)
		st.cur = c
	}
	got := f.replica().bundle(st, now.Add(90*time.Minute))
	if len(got) > maxBundleCAs {
		t.Errorf("bundle of %d CAs, want at most %d", len(got), maxBundleCAs)
	}
	if b := encodeCerts(got); BundleHas(b, cas[0]) || !BundleHas(b, cas[4]) {
		t.Error("want the expired CA dropped and the current one kept")
	}
	if !bytes.Equal(got[len(got)-1].Raw, firstDER(cas[4])) || !bytes.Equal(got[0].Raw, firstDER(cas[2])) {
		t.Error("want the stable order, oldest first, the oldest dropped over the cap")
	}
	// cur 3 with next 4 pending, then 4 promoted: the same bundle.
	st.bundle = got
	st.cur, st.next = pairs[3], pairs[4]
	pending := f.replica().bundle(st, now.Add(90*time.Minute))
	st.bundle = pending
	st.cur, st.next = pairs[4], nil
	if !bytes.Equal(encodeCerts(f.replica().bundle(st, now.Add(90*time.Minute))), encodeCerts(pending)) {
		t.Error("a promotion, which changes no CA, changed the bundle")
	}
}

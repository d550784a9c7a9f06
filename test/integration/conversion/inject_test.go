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
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestCertRotatorChecksCRDsByMetadata: the rotator's periodic check reads
// the CRDs whole (the Sandbox and template CRDs carry the Pod schema,
// ~400 KB each) only when one changed since it last saw them trusting its
// bundle; otherwise it reads their metadata. A CRD whose caBundle someone
// replaced is read whole and repaired at the next check.
func TestCertRotatorChecksCRDsByMetadata(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 2*time.Minute)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var whole, meta framework.RequestLog
	extCfg := rest.CopyConfig(env.Config)
	extCfg.WrapTransport = whole.Wrap
	ext, err := kubeclient.NewForConfig(extCfg)
	if err != nil {
		t.Fatal(err)
	}
	metaCfg := rest.CopyConfig(env.Config)
	metaCfg.WrapTransport = meta.Wrap
	crdMeta, err := metadata.NewForConfig(metaCfg)
	if err != nil {
		t.Fatal(err)
	}
	_, rctx := ktesting.NewTestContext(t)
	rctx, cancel := context.WithCancel(rctx)
	const secretName = "webhook-certs"
	rot := &conversion.CertRotator{
		Kube: env.ControllerKube, CRDs: ext.ApiextensionsV1(), CRDMetadata: crdMeta, Namespace: env.Namespace, Secret: secretName,
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, Endpoint: conversion.Endpoint{URL: "https://" + l.Addr().String() + "/convert"},
		CheckInterval: 200 * time.Millisecond,
	}
	if err := rot.Start(rctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- conversion.Serve(rctx, l, rot.GetCertificate, conversion.DefaultLimits()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	crdGets := func(log *framework.RequestLog, mark int) int {
		n := 0
		for _, r := range log.Since(mark) {
			if strings.HasPrefix(r, "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/") {
				n++
			}
		}
		return n
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			return cond(), nil
		}); err != nil {
			t.Fatalf("%s never happened", what)
		}
	}

	wholeMark, metaMark := whole.Mark(), meta.Mark()
	poll("three checks by metadata", func() bool { return crdGets(&meta, metaMark) >= 3*len(conversion.CRDNames) })
	if n := crdGets(&whole, wholeMark); n != 0 {
		t.Errorf("%d whole CRD reads in three checks with nothing changed, want 0", n)
	}

	// Someone replaces the Sandbox CRD's caBundle: the next check sees a
	// new resourceVersion, reads it whole and puts the bundle back.
	crds := env.APIExtension.ApiextensionsV1().CustomResourceDefinitions()
	crd, err := crds.Get(ctx, conversion.CRDNames[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := conversion.NewCerts(nil, []net.IP{net.ParseIP("127.0.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	crd.Spec.Conversion.Webhook.ClientConfig.CABundle = other.CA
	wholeMark = whole.Mark()
	if _, err := crds.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret, err := env.Kube.CoreV1().Secrets(env.Namespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll("the replaced caBundle put back", func() bool {
		got, err := crds.Get(ctx, conversion.CRDNames[0], metav1.GetOptions{})
		return err == nil && conversion.SameCA(got.Spec.Conversion.Webhook.ClientConfig.CABundle, secret.Data["ca-bundle.crt"])
	})
	var reads []string
	for _, r := range whole.Since(wholeMark) {
		if strings.HasPrefix(r, "GET ") {
			reads = append(reads, r)
		}
	}
	if len(reads) == 0 || slices.ContainsFunc(reads, func(r string) bool { return !strings.HasSuffix(r, "/"+conversion.CRDNames[0]) }) {
		t.Errorf("whole CRD reads to repair the Sandbox CRD: %q; want that one only", reads)
	}
}

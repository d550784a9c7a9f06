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

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/agentsandbox/agent-sandbox/pkg/router"
)

func defaults() options {
	o := options{
		cacheEnabled: true, clusterDomain: router.DefaultClusterDomain,
		proxyTimeout: router.DefaultProxyTimeout, respHeaderTimeout: router.DefaultResponseHeaderTimeout,
		retries: 3, retryInitialDelay: 200 * time.Millisecond, retryMaxDelay: 800 * time.Millisecond,
		qps: 50, burst: 100, authzMode: router.AuthzModeAllowAll, trTTL: time.Second, trCacheSize: 1,
		maxRespHeaderBytes: router.DefaultMaxResponseHeaderBytes,
		trRequireToken:     true, trScope: router.TokenReviewScopeNamespace, reviewQPS: 20, reviewBurst: 40,
		wakeAuthz: router.WakeAuthzRBAC, wakeTimeout: router.DefaultWakeTimeout,
	}
	o.HTTPAddr = ":8080"
	o.MaxRequestHeaderBytes = router.DefaultMaxRequestHeaderBytes
	return o
}

func TestApplyEnv(t *testing.T) {
	cases := map[string]struct {
		proxyTimeout, clusterDomain string
		wantTimeout                 time.Duration
		wantDomain                  string
	}{
		"fractional seconds": {"12.5", "", 12500 * time.Millisecond, router.DefaultClusterDomain},
		"invalid ignored":    {"soon", "", router.DefaultProxyTimeout, router.DefaultClusterDomain},
		"negative ignored":   {"-5", "", router.DefaultProxyTimeout, router.DefaultClusterDomain},
		"cluster domain":     {"", "example.internal", router.DefaultProxyTimeout, "example.internal"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("PROXY_TIMEOUT_SECONDS", tc.proxyTimeout)
			t.Setenv("CLUSTER_DOMAIN", tc.clusterDomain)
			o := defaults()
			applyEnv(&o)
			if o.proxyTimeout != tc.wantTimeout || o.clusterDomain != tc.wantDomain {
				t.Errorf("proxyTimeout, clusterDomain = %v, %q; want %v, %q", o.proxyTimeout, o.clusterDomain, tc.wantTimeout, tc.wantDomain)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		mutate func(*options)
		want   string
	}{
		"defaults":             {func(*options) {}, ""},
		"no proxy listener":    {func(o *options) { o.HTTPAddr = "" }, "at least one"},
		"cache disabled":       {func(o *options) { o.cacheEnabled = false }, "--cache-enabled=false"},
		"zero proxy timeout":   {func(o *options) { o.proxyTimeout = 0 }, "--proxy-timeout"},
		"negative body limit":  {func(o *options) { o.maxBodyBytes = -1 }, "--max-request-body-bytes"},
		"no header cap":        {func(o *options) { o.maxRespHeaderBytes = 0 }, "--max-response-header-bytes"},
		"negative inflight":    {func(o *options) { o.maxInflightClient = -1 }, "--max-inflight-requests-per-client"},
		"negative connections": {func(o *options) { o.MaxConnections = -1 }, "--max-connections"},
		"unknown mode":         {func(o *options) { o.authzMode = "nope" }, "unknown --authz-mode"},
		"scoped without file":  {func(o *options) { o.authzMode = router.AuthzModeScopedToken }, "secret-file"},
		"sar with zero ttl":    {func(o *options) { o.authzMode = router.AuthzModeSubjectAccessReview; o.trTTL = 0 }, "ttl"},
		"retry delays swapped": {func(o *options) { o.retryMaxDelay = time.Millisecond }, "retry"},
		"unknown scope":        {func(o *options) { o.authzMode = router.AuthzModeTokenReview; o.trScope = "all" }, "--authz-tokenreview-scope"},
		"zero review qps":      {func(o *options) { o.authzMode = router.AuthzModeTokenReview; o.reviewQPS = 0 }, "--authz-review-qps"},
		"unknown wake authz":   {func(o *options) { o.wakeAuthz = "anyone" }, "--wake-authz"},
		"zero wake timeout":    {func(o *options) { o.wakeTimeout = 0 }, "--wake-timeout"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := defaults()
			tc.mutate(&o)
			err := o.validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

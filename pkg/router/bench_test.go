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

package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"

	"k8s.io/klog/v2/textlogger"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// benchBody is the small answer of the benchmarks' upstream.
var benchBody = []byte(`{"status":"ok","from":"benchmark upstream"}` + "\n")

// BenchmarkServeProxy is one small GET through the router's handler to a
// loopback upstream, with the production logger (klog's text format, to
// io.Discard) and the access log on; "minimal" is a bare
// httputil.ReverseProxy in front of the same upstream, the floor the
// router is compared with. The upstream's own allocations, the request
// and the recorder are in every figure alike: compare the sub-benchmarks'
// allocs/op and B/op, which stay put on a busy machine, not ns/op.
func BenchmarkServeProxy(b *testing.B) {
	be := newBackend(b, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(headerContentType, contentTypeJSON)
		_, _ = w.Write(benchBody)
	})
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, "/bench?x=1", http.NoBody)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("X-Sandbox-ID", "sb")
			req.Header.Set("X-Sandbox-Namespace", "bench")
			req.Header.Set("X-Sandbox-Port", be.port)
			req.Header.Set("User-Agent", "bench")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	}
	b.Run("minimal", func(b *testing.B) {
		u, _ := url.Parse(be.URL)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		defer tr.CloseIdleConnections()
		run(b, &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
			Transport: tr,
		})
	})
	for _, accessLog := range []bool{true, false} {
		name := "router"
		if !accessLog {
			name = "router-no-access-log"
		}
		b.Run(name, func(b *testing.B) {
			r, _ := newTestRouter(b, func(o *Options) {
				o.AccessLog = accessLog
				o.Logger = textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(io.Discard)))
			}, sandboxPod("bench", "sb", "127.0.0.1"))
			run(b, r.Handler())
		})
	}
	// A warm claim's Sandbox with two variables (docs/design/warm-env.md):
	// the request is to the runtime port its annotation names, so the
	// router sets X-Sandbox-Env from the precomputed entry. Compare with
	// "router-no-access-log".
	b.Run("router-no-access-log-env", func(b *testing.B) {
		pod := sandboxPod("bench", "sb", "127.0.0.1")
		port, _ := strconv.Atoi(be.port)
		sb := sandboxFor(pod)
		a, err := warmenv.Marshal(warmenv.Spec{Port: int32(port), Env: []warmenv.Var{{Name: "API_KEY", Value: "sk-0123456789abcdef"}, {Name: "TASK_ID", Value: "42"}}})
		if err != nil {
			b.Fatal(err)
		}
		sb.Annotations = map[string]string{agentsv1beta1.EnvAnnotation: a}
		r, _, _ := newTestRouterObjs(b, func(o *Options) {
			o.AccessLog = false
			o.Logger = textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(io.Discard)))
		}, pod, sb)
		run(b, r.Handler())
	})
}

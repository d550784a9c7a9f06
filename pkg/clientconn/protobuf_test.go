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

package clientconn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestProtobufConfigAsksForProtobuf checks the headers a built-in client
// made from ProtobufConfig sends: protobuf first in Accept, protobuf
// bodies, patches in their own media type; the original config is
// untouched.
func TestProtobufConfigAsksForProtobuf(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][2]string{} // method → Accept, Content-Type
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method] = [2]string{r.Header.Get("Accept"), r.Header.Get("Content-Type")}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	}))
	defer srv.Close()

	base := &rest.Config{Host: srv.URL}
	kube, err := kubernetes.NewForConfig(ProtobufConfig(base))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, _ = kube.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
	_, _ = kube.CoreV1().Pods("ns").Patch(ctx, "p", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
	_, _ = kube.CoreV1().ConfigMaps("ns").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})

	mu.Lock()
	defer mu.Unlock()
	if got := seen[http.MethodGet][0]; !strings.HasPrefix(got, "application/vnd.kubernetes.protobuf") || !strings.Contains(got, "application/json") {
		t.Errorf("GET Accept = %q, want protobuf first and JSON allowed", got)
	}
	if got := seen[http.MethodPatch][1]; got != string(types.MergePatchType) {
		t.Errorf("PATCH Content-Type = %q, want %s", got, types.MergePatchType)
	}
	if got := seen[http.MethodPost][1]; got != "application/vnd.kubernetes.protobuf" {
		t.Errorf("POST Content-Type = %q, want protobuf", got)
	}
	if base.ContentType != "" || base.AcceptContentTypes != "" {
		t.Errorf("the caller's config was changed: %q, %q", base.ContentType, base.AcceptContentTypes)
	}
}

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

package processnode

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
	"github.com/agentsandbox/agent-sandbox/test/processnode"
)

// TestWakeFilesSurvive: a file written to a Sandbox's volume is there
// when a request through the router wakes the suspended Sandbox: the
// request resumes it, is held until the new runtime is Ready, and runs in
// it.
func TestWakeFilesSurvive(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	node := processnode.StartForTest(t, env.Config, processnode.Options{
		Nodes: []string{nodeName(env)}, PodCIDRSlot: framework.PodCIDRSlot(), Provision: true,
	})
	routerURL, _ := framework.StartRouter(t, env, func(o *router.Options) {
		o.AccessLog = false
		o.WakeAuthz = router.WakeAuthzProxy
	})
	ctx := context.Background()
	sb := newSandbox(env.Namespace, "sleeper", nodeName(env))
	sb.Annotations = map[string]string{agentsv1beta1.WakeOnRequestAnnotation: agentsv1beta1.WakeOnRequestEnabled}
	withWorkspace(sb)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitReady(t, env, "sleeper")
	if out, code := execute(t, pod.Status.PodIP, `sh -c "echo kept > notes.txt"`); code != 0 {
		t.Fatalf("writing a file: exit code %d, %q", code, out)
	}
	pid := runtimePID(t, node, pod)
	setMode(t, env, "sleeper", agentsv1beta1.SandboxOperatingModeSuspended)
	waitPodGone(t, env, "sleeper", pod.UID)
	waitProcessGone(t, pid)

	body, _ := json.Marshal(map[string]string{"command": "cat notes.txt"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, routerURL+"/execute", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(router.HeaderSandboxID, "sleeper")
	req.Header.Set(router.HeaderSandboxNamespace, env.Namespace)
	req.Header.Set(router.HeaderSandboxTimeout, "60")
	client := &http.Client{Timeout: 2 * waitTimeout, Transport: &http.Transport{Proxy: nil}}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("the waking request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Stdout   string `json:"stdout"`
		ExitCode int    `json:"exit_code"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.Stdout != "kept\n" || out.ExitCode != 0 {
		t.Fatalf("the waking request: %d %q, want 200 with the file's content", resp.StatusCode, raw)
	}
	t.Logf("woken and answered in %v", time.Since(start))
	got, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "sleeper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning {
		t.Errorf("operatingMode %q after the wake, want Running", got.Spec.OperatingMode)
	}
}

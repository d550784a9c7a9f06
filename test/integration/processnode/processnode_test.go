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
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
	"github.com/agentsandbox/agent-sandbox/test/localcluster"
	"github.com/agentsandbox/agent-sandbox/test/processnode"
)

// waitTimeout bounds every poll: generous, for a loaded machine.
const waitTimeout = 90 * time.Second

func newSandbox(ns, name, node string) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "runtime", Image: "sandbox-runtime",
					Ports: []corev1.ContainerPort{{ContainerPort: 8888}},
				}},
			}},
		}},
	}
	processnode.ScheduleOn(&sb.Spec.PodTemplate.Spec, node)
	return sb
}

// withWorkspace gives sb a PVC of the process node's StorageClass mounted
// at the runtime's base dir, /app.
func withWorkspace(sb *agentsv1beta1.Sandbox) {
	sb.Spec.VolumeClaimTemplates = []agentsv1beta1.PersistentVolumeClaimTemplate{{
		EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: "workspace"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(processnode.StorageClassName),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	sb.Spec.PodTemplate.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "workspace", MountPath: "/app"}}
}

// nodeName is unique per test: the tests share a control plane.
func nodeName(env *framework.Env) string { return "pn-" + env.Namespace }

func poll(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, waitTimeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitReady waits until the Sandbox is Ready and returns its Pod.
func waitReady(t *testing.T, env *framework.Env, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, "sandbox "+name+" Ready", func(ctx context.Context) (bool, error) {
		sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || !meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)) || len(sb.Status.PodIPs) == 0 {
			return false, nil
		}
		pod, err = env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Status.PodIP == sb.Status.PodIPs[0], nil
	})
	return pod
}

func waitPodGone(t *testing.T, env *framework.Env, name string, uid types.UID) {
	t.Helper()
	poll(t, "pod "+name+" gone", func(ctx context.Context) (bool, error) {
		pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || err == nil && pod.UID != uid, nil
	})
}

// runtimeRunning reports whether pid is a live sandbox-runtime process
// (not a zombie): the test checks the process node's kills from the
// outside, by PID, not through the node's own bookkeeping.
func runtimeRunning(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "sandbox-runtime" {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func waitProcessGone(t *testing.T, pid int) {
	t.Helper()
	poll(t, fmt.Sprintf("runtime pid %d gone", pid), func(context.Context) (bool, error) { return !runtimeRunning(pid), nil })
}

// execute runs command in the runtime at ip:8888, directly (not through
// the router).
func execute(t *testing.T, ip, command string) (stdout string, exitCode int) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"command": command})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Post("http://"+ip+":8888/execute", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("execute %q: %v", command, err)
	}
	defer resp.Body.Close()
	var out struct {
		Stdout   string `json:"stdout"`
		Stderr   string `json:"stderr"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("execute %q: decoding: %v", command, err)
	}
	return out.Stdout, out.ExitCode
}

func runtimePID(t *testing.T, node *processnode.Node, pod *corev1.Pod) int {
	t.Helper()
	pid, ok := node.Process(pod.UID)
	if !ok {
		t.Fatalf("the process node runs no runtime for pod %s", pod.Name)
	}
	if !runtimeRunning(pid) {
		t.Fatalf("pid %d of pod %s is not a running sandbox-runtime", pid, pod.Name)
	}
	return pid
}

func setMode(t *testing.T, env *framework.Env, name string, mode agentsv1beta1.SandboxOperatingMode) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"operatingMode":%q}}`, mode)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestSandboxRunsOnProcessNode: Ready with a loopback IP from the node's
// CIDR on which the runtime executes commands; suspend kills the runtime
// and deletes the Pod; resume starts a new one; deleting the Sandbox
// kills that too.
func TestSandboxRunsOnProcessNode(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	node := processnode.StartForTest(t, env.Config, processnode.Options{Nodes: []string{nodeName(env)}, PodCIDRSlot: framework.PodCIDRSlot()})
	ctx := context.Background()

	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, newSandbox(env.Namespace, "box", nodeName(env)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitReady(t, env, "box")
	cidr := netip.MustParsePrefix(localcluster.ProcessNodePodCIDR(framework.PodCIDRSlot(), 0))
	if ip := netip.MustParseAddr(pod.Status.PodIP); !cidr.Contains(ip) || !ip.IsLoopback() {
		t.Fatalf("pod IP %s is not a loopback address of the node's CIDR %s", ip, cidr)
	}
	if pod.Spec.NodeName != nodeName(env) || pod.Status.HostIP != processnode.HostIP {
		t.Errorf("pod on node %q with host IP %q, want %q and %q", pod.Spec.NodeName, pod.Status.HostIP, nodeName(env), processnode.HostIP)
	}
	if out, code := execute(t, pod.Status.PodIP, "echo hello from the process node"); out != "hello from the process node\n" || code != 0 {
		t.Fatalf("echo: stdout %q, exit code %d", out, code)
	}
	pid := runtimePID(t, node, pod)

	setMode(t, env, "box", agentsv1beta1.SandboxOperatingModeSuspended)
	waitPodGone(t, env, "box", pod.UID)
	waitProcessGone(t, pid)

	setMode(t, env, "box", agentsv1beta1.SandboxOperatingModeRunning)
	resumed := waitReady(t, env, "box")
	if resumed.UID == pod.UID {
		t.Fatal("resumed with the suspended Pod")
	}
	if out, code := execute(t, resumed.Status.PodIP, "echo resumed"); out != "resumed\n" || code != 0 {
		t.Fatalf("echo after resume: stdout %q, exit code %d", out, code)
	}
	pid = runtimePID(t, node, resumed)

	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, "box", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, env, "box", resumed.UID)
	waitProcessGone(t, pid)
}

// TestRuntimeCrashIsRestarted: a runtime killed from outside is started
// again (restartPolicy Always), the restart is counted, and the Sandbox is
// Ready again on the same address.
func TestRuntimeCrashIsRestarted(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	node := processnode.StartForTest(t, env.Config, processnode.Options{Nodes: []string{nodeName(env)}, PodCIDRSlot: framework.PodCIDRSlot()})
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(context.Background(), newSandbox(env.Namespace, "crashy", nodeName(env)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitReady(t, env, "crashy")
	pid := runtimePID(t, node, pod)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var restarted *corev1.Pod
	poll(t, "the runtime restarted and Ready", func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "crashy", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, nil
		}
		cs := p.Status.ContainerStatuses[0]
		restarted = p
		return cs.RestartCount == 1 && cs.Ready, nil
	})
	last := restarted.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 128+int32(syscall.SIGKILL) || last.Signal != int32(syscall.SIGKILL) {
		t.Errorf("last termination %+v, want exit code 137 by SIGKILL", last)
	}
	if restarted.UID != pod.UID || restarted.Status.PodIP != pod.Status.PodIP {
		t.Errorf("restarted as pod %s at %s, want the same pod %s at %s", restarted.UID, restarted.Status.PodIP, pod.UID, pod.Status.PodIP)
	}
	if newPID := runtimePID(t, node, restarted); newPID == pid {
		t.Errorf("still pid %d", pid)
	}
	if out, code := execute(t, restarted.Status.PodIP, "echo again"); out != "again\n" || code != 0 {
		t.Fatalf("echo after restart: stdout %q, exit code %d", out, code)
	}
}

// TestRestartAdoptsLiveAndKillsTheRest: the process node goes away leaving
// its runtimes running. Meanwhile one Sandbox is deleted (its Pod waits,
// terminating, for a kubelet) and another's Pod is force-deleted and
// recreated under the same name. A node started again on the same state
// directory adopts the untouched runtime (same PID, still serving), kills
// the other two, deletes the terminating Pod and runs the recreated one.
// Stopping it leaves no runtime behind.
func TestRestartAdoptsLiveAndKillsTheRest(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	name := nodeName(env)
	opts := processnode.Options{
		Nodes: []string{name}, PodCIDRSlot: framework.PodCIDRSlot(),
		RuntimeBinary: processnode.BuildRuntime(t), StateDir: t.TempDir(), KillRuntimesOnExit: true,
	}
	first, err := processnode.Start(framework.Context(t, 10*time.Minute), withConfig(opts, env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Stop)
	ctx := context.Background()
	pods := map[string]*corev1.Pod{}
	pids := map[string]int{}
	for _, sb := range []string{"kept", "deleted", "replaced"} {
		if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, newSandbox(env.Namespace, sb, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sb := range []string{"kept", "deleted", "replaced"} {
		pods[sb] = waitReady(t, env, sb)
		pids[sb] = runtimePID(t, first, pods[sb])
	}

	first.Abandon()
	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the deleted sandbox's pod terminating", func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "deleted", metav1.GetOptions{})
		return err == nil && p.DeletionTimestamp != nil, nil
	})
	if err := env.Kube.CoreV1().Pods(env.Namespace).Delete(ctx, "replaced", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the replaced sandbox's pod recreated", func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "replaced", metav1.GetOptions{})
		return err == nil && p.UID != pods["replaced"].UID, nil
	})
	for sb, pid := range pids {
		if !runtimeRunning(pid) {
			t.Fatalf("the runtime of %s (pid %d) died with the abandoned node", sb, pid)
		}
	}

	second := processnode.StartForTest(t, env.Config, opts)
	waitPodGone(t, env, "deleted", pods["deleted"].UID)
	waitProcessGone(t, pids["deleted"])
	waitProcessGone(t, pids["replaced"])
	replaced := waitReady(t, env, "replaced")
	if replaced.UID == pods["replaced"].UID {
		t.Fatal("the replaced sandbox is Ready with its old pod")
	}
	replacedPID := runtimePID(t, second, replaced)
	if out, code := execute(t, replaced.Status.PodIP, "echo replaced"); out != "replaced\n" || code != 0 {
		t.Fatalf("echo in the replacement: stdout %q, exit code %d", out, code)
	}
	if pid := runtimePID(t, second, pods["kept"]); pid != pids["kept"] {
		t.Errorf("kept runtime is pid %d after the restart, want the adopted %d", pid, pids["kept"])
	}
	if out, code := execute(t, pods["kept"].Status.PodIP, "echo adopted"); out != "adopted\n" || code != 0 {
		t.Fatalf("echo in the adopted runtime: stdout %q, exit code %d", out, code)
	}

	second.Stop()
	for _, pid := range []int{pids["kept"], replacedPID} {
		if runtimeRunning(pid) {
			t.Errorf("runtime pid %d still runs after Stop", pid)
		}
	}
	if leaked := runtimesUnder(t, opts.StateDir); len(leaked) > 0 {
		t.Errorf("runtimes of the state directory still running: %v", leaked)
	}
}

func withConfig(o processnode.Options, env *framework.Env) processnode.Options {
	o.Config = env.Config
	return o
}

// runtimesUnder lists live sandbox-runtime processes whose base dir is
// inside dir.
func runtimesUnder(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || !runtimeRunning(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if i := slices.Index(args, "--base-dir"); i >= 0 && i+1 < len(args) && strings.HasPrefix(args[i+1], dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestVolumeSurvivesSuspendAndResume: a PersistentVolumeClaim of the
// process node's StorageClass is provisioned, the runtime's base dir is
// its directory, a file written there is found again after suspend and
// resume, and deleting the claim deletes the volume and its directory.
func TestVolumeSurvivesSuspendAndResume(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	node := processnode.StartForTest(t, env.Config, processnode.Options{
		Nodes: []string{nodeName(env)}, PodCIDRSlot: framework.PodCIDRSlot(), Provision: true,
	})
	ctx := context.Background()
	sb := newSandbox(env.Namespace, "keeper", nodeName(env))
	withWorkspace(sb)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitReady(t, env, "keeper")
	if out, code := execute(t, pod.Status.PodIP, `sh -c "echo kept > notes.txt"`); code != 0 {
		t.Fatalf("writing a file: exit code %d, %q", code, out)
	}
	var pvc *corev1.PersistentVolumeClaim
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			var err error
			if pvc, err = env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pvc == nil || pvc.Spec.VolumeName == "" {
		t.Fatalf("the pod's claim is not bound: %+v", pvc)
	}
	volumeDir := filepath.Join(node.StateDir(), "volumes", string(pvc.UID))
	if b, err := os.ReadFile(filepath.Join(volumeDir, "notes.txt")); err != nil || string(b) != "kept\n" {
		t.Fatalf("the file is not in the claim's directory %s: %q, %v", volumeDir, b, err)
	}
	pid := runtimePID(t, node, pod)

	setMode(t, env, "keeper", agentsv1beta1.SandboxOperatingModeSuspended)
	waitPodGone(t, env, "keeper", pod.UID)
	waitProcessGone(t, pid)
	setMode(t, env, "keeper", agentsv1beta1.SandboxOperatingModeRunning)
	resumed := waitReady(t, env, "keeper")
	if out, code := execute(t, resumed.Status.PodIP, "cat notes.txt"); out != "kept\n" || code != 0 {
		t.Fatalf("after resume: cat notes.txt = %q, exit code %d", out, code)
	}

	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, "keeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, env, "keeper", resumed.UID)
	if err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Delete(ctx, pvc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	poll(t, "the released volume deleted", func(ctx context.Context) (bool, error) {
		_, err := env.Kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := os.Lstat(volumeDir); !os.IsNotExist(err) {
		t.Errorf("the volume's directory %s is still there: %v", volumeDir, err)
	}
}

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
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/runtime"
)

// defaultRuntimePort is the runtime's port when the Pod declares none,
// the port the router and the SDKs default to.
const defaultRuntimePort = 8888

// runtimeProc is a runtime process this node watches: one it started
// (exited is closed when it ends, with its wait status), or one a previous
// run started and this run adopted (exited is nil; its end is seen by
// polling its identity, and its exit status is unknown).
type runtimeProc struct {
	id     procIdentity
	exited chan struct{}
	status syscall.WaitStatus
}

func (p *runtimeProc) done() bool {
	if p.exited == nil {
		return !p.id.alive()
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// runtimeContainer picks the container the runtime stands in for, and its
// port: the first container that declares a TCP port, or the first
// container on the default port. The process node runs one runtime per
// Pod, whatever the Pod's containers.
func runtimeContainer(pod *corev1.Pod) (*corev1.Container, int32) {
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, p := range c.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				return c, p.ContainerPort
			}
		}
	}
	return &pod.Spec.Containers[0], defaultRuntimePort
}

// containerBaseDir is the directory the runtime would confine itself to
// inside the container: SANDBOX_BASE_DIR from the container's env, or the
// runtime's default.
func containerBaseDir(c *corev1.Container) string {
	dir := runtime.DefaultBaseDir
	for _, e := range c.Env {
		if e.Name == runtime.EnvBaseDir && e.ValueFrom == nil && strings.TrimSpace(e.Value) != "" {
			dir = strings.TrimSpace(e.Value)
		}
	}
	if !path.IsAbs(dir) {
		dir = path.Join("/", dir)
	}
	return path.Clean(dir)
}

// safeRel reports whether p, relative, stays below its base.
func safeRel(p string) bool {
	p = path.Clean("/" + p)
	return !strings.Contains(p, "/../") && p != "/.."
}

// hostBaseDir maps the runtime's base dir to a directory of the state
// directory (relative to it). The volume mounted at the base dir or above
// it gives the directory: a PersistentVolumeClaim's is kept per claim UID
// (files survive the Pod, so a suspended and resumed sandbox finds them),
// an emptyDir's lives and dies with the Pod. Without such a mount, the
// base dir is the Pod's own rootfs/<base dir>. Mounts elsewhere are not
// reachable by the runtime and are ignored: there is no mount namespace.
func (n *Node) hostBaseDir(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (string, error) {
	base := containerBaseDir(c)
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		mp := path.Clean(m.MountPath)
		if (base == mp || strings.HasPrefix(base, strings.TrimSuffix(mp, "/")+"/")) && (best == nil || len(mp) > len(path.Clean(best.MountPath))) {
			best = m
		}
	}
	if best == nil {
		return path.Join(podDir(pod.UID), "rootfs", base), nil
	}
	if !safeRel(best.SubPath) {
		return "", fmt.Errorf("volume mount %s: subPath %q leaves the volume", best.Name, best.SubPath)
	}
	rest := strings.TrimPrefix(base, path.Clean(best.MountPath))
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == best.Name {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return "", fmt.Errorf("volume mount %s names no volume", best.Name)
	}
	var dir string
	switch {
	case vol.EmptyDir != nil:
		if !safeRel(vol.Name) || strings.Contains(vol.Name, "/") {
			return "", fmt.Errorf("volume name %q", vol.Name)
		}
		dir = path.Join(podDir(pod.UID), "volumes", vol.Name)
	case vol.PersistentVolumeClaim != nil:
		pvc, err := n.kube.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, vol.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("getting PersistentVolumeClaim %s of volume %s: %w", vol.PersistentVolumeClaim.ClaimName, vol.Name, err)
		}
		if !validUID(pvc.UID) {
			return "", fmt.Errorf("PersistentVolumeClaim %s has UID %q", pvc.Name, pvc.UID)
		}
		dir = volumeDir(pvc.UID)
	default:
		return "", fmt.Errorf("volume %s mounted at the runtime's base dir %s: only emptyDir and persistentVolumeClaim volumes are supported", vol.Name, base)
	}
	return path.Join(dir, best.SubPath, rest), nil
}

// runtimeEnv is the runtime's environment: enough of the node's for
// commands to find programs, HOME at the base dir, then the container's
// literal env (valueFrom is not resolved).
func runtimeEnv(c *corev1.Container, baseDir string) []string {
	env := []string{"HOME=" + baseDir}
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil || e.Name == "SANDBOX_LISTEN" || e.Name == runtime.EnvBaseDir {
			continue
		}
		env = append(env, e.Name+"="+e.Value)
	}
	return env
}

// startRuntime starts the Pod's runtime on rec's address, a session leader
// so that every process it starts can be found and killed with it.
func (n *Node) startRuntime(ctx context.Context, pod *corev1.Pod, rec *record, key cache.ObjectName) error {
	c, _ := runtimeContainer(pod)
	rel, err := n.hostBaseDir(ctx, pod, c)
	if err != nil {
		return err
	}
	if err := n.store.mkdirAll(rel); err != nil {
		return fmt.Errorf("creating base dir: %w", err)
	}
	baseDir := n.store.abs(rel)
	logf, err := n.store.openLog(pod.UID)
	if err != nil {
		return fmt.Errorf("opening runtime log: %w", err)
	}
	defer func() { _ = logf.Close() }() // the child has its own descriptor
	if _, err := fmt.Fprintf(logf, "--- %s process node: starting %s on %s (pod %s/%s)\n", time.Now().Format(time.RFC3339), n.opts.RuntimeBinary,
		net.JoinHostPort(rec.IP, strconv.Itoa(int(rec.Port))), pod.Namespace, pod.Name); err != nil {
		return fmt.Errorf("writing runtime log: %w", err)
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	if n.opts.KillRuntimesOnExit {
		attr.Pdeathsig = syscall.SIGKILL
	}
	proc, err := os.StartProcess(n.opts.RuntimeBinary, []string{
		n.opts.RuntimeBinary,
		"--listen", net.JoinHostPort(rec.IP, strconv.Itoa(int(rec.Port))),
		"--base-dir", baseDir,
	}, &os.ProcAttr{Dir: baseDir, Env: runtimeEnv(c, baseDir), Files: []*os.File{nil, logf, logf}, Sys: attr})
	if err != nil {
		return fmt.Errorf("starting runtime: %w", err)
	}
	id, err := identify(proc.Pid)
	if err != nil {
		// It died at once (and is a zombie we reap now) or /proc is
		// unreadable: either way it cannot be tracked.
		_ = proc.Kill()
		_, _ = proc.Wait()
		return fmt.Errorf("reading the runtime's identity: %w", err)
	}
	p := &runtimeProc{id: id, exited: make(chan struct{})}
	go func() {
		state, err := proc.Wait()
		if err == nil {
			p.status, _ = state.Sys().(syscall.WaitStatus)
		}
		close(p.exited)
		n.queue.Add(key)
	}()
	rec.Process, rec.StartedAt, rec.NextStart = &id, time.Now(), time.Time{}
	n.mu.Lock()
	n.procs[pod.UID] = p
	n.mu.Unlock()
	klog.FromContext(ctx).V(2).Info("Started runtime", "pod", klog.KObj(pod), "pid", id.PID, "address", net.JoinHostPort(rec.IP, strconv.Itoa(int(rec.Port))), "baseDir", baseDir)
	return n.store.save(rec)
}

// healthy asks the runtime's health endpoint (GET / answers 200).
func (n *Node) healthy(ctx context.Context, rec *record) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(rec.IP, strconv.Itoa(int(rec.Port)))+"/", http.NoBody)
	if err != nil {
		return false
	}
	resp, err := n.probe.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stopRuntime ends the runtime of rec, if any, as a container stop: SIGTERM
// to the runtime (it kills the commands it runs), SIGKILL to its whole
// session after grace, and SIGKILL to whatever is left of the session
// (background children of finished commands) once it is gone.
func (n *Node) stopRuntime(ctx context.Context, rec *record, grace time.Duration) {
	n.mu.Lock()
	p := n.procs[rec.UID]
	delete(n.procs, rec.UID)
	n.mu.Unlock()
	if rec.Process == nil {
		return
	}
	id := *rec.Process
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(rec.Namespace, rec.Name), "pid", id.PID)
	gone := func() bool {
		if p != nil && p.exited != nil {
			return p.done()
		}
		return !id.alive()
	}
	if !gone() {
		if err := id.signalLeader(syscall.SIGTERM); err != nil {
			logger.Error(err, "Stopping runtime")
		}
		waitUntil(min(grace, n.opts.MaxGracePeriod), gone)
	}
	// The session outlives its leader: commands it started, and their
	// children, are killed with it, as a container's processes are.
	for range 10 {
		if err := id.killSession(); err != nil {
			logger.Error(err, "Killing runtime session")
		}
		if waitUntil(time.Second, func() bool {
			members, err := id.sessionMembers()
			return err == nil && len(members) == 0 && gone()
		}) {
			break
		}
	}
	logger.V(2).Info("Stopped runtime")
}

// waitUntil polls cond every 20ms for up to d; it reports whether cond
// held.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sweepStrays kills runtimes that run on this state directory but that no
// record accounts for: the node died between starting one and recording
// it. A process counts only if it runs the runtime binary, leads its own
// session, and was given a --base-dir inside the state directory.
func (n *Node) sweepStrays(ctx context.Context, known map[int]bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	want, err := filepath.EvalSymlinks(n.opts.RuntimeBinary)
	if err != nil {
		want = n.opts.RuntimeBinary
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || known[pid] {
			continue
		}
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err != nil || strings.TrimSuffix(exe, " (deleted)") != want {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		i := slices.Index(args, "--base-dir")
		if i < 0 || i+1 >= len(args) || !strings.HasPrefix(args[i+1], n.store.dir+string(filepath.Separator)) {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.sid != pid {
			continue
		}
		id := procIdentity{PID: pid, StartTicks: st.startTicks, BootID: bootID()}
		klog.FromContext(ctx).Info("Killing a runtime no record accounts for", "pid", pid, "baseDir", args[i+1])
		_ = id.killSession()
	}
}

// parseIP parses a record's address.
func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("record address %q: %w", s, err)
	}
	return ip, nil
}

// deletePod removes a Pod whose runtime is gone, with grace 0 as the
// kubelet does once the containers stopped, so the deletions and the
// suspensions that wait for it complete. The UID precondition keeps a
// Pod recreated under the same name safe.
func (n *Node) deletePod(ctx context.Context, pod *corev1.Pod) error {
	uid := pod.UID
	err := n.kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

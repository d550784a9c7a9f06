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

// Package localcluster runs a real Kubernetes control plane on 127.0.0.1
// from binaries built from source: etcd and kube-apiserver, and on demand
// kube-controller-manager (garbage collection, service accounts), the
// scheduler and kwok fake nodes whose Pods become Running and Ready with
// IPs inside 127.0.0.0/8. The integration test framework, 'make cluster-up'
// and 'make dev' all start their clusters through it.
package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Component names, also the names of their log and pid files. Stop order
// is the reverse of start order.
const (
	etcdName              = "etcd"
	apiServerName         = "kube-apiserver"
	controllerManagerName = "kube-controller-manager"
	schedulerName         = "kube-scheduler"
	kwokName              = "kwok"
)

var startOrder = []string{etcdName, apiServerName, controllerManagerName, schedulerName, kwokName}

// KubeconfigFile is the admin kubeconfig's name inside the state directory.
const KubeconfigFile = "kubeconfig"

// Fake nodes are managed by kwok only when they carry this annotation, so
// kwok never touches a node it did not get from us.
const (
	fakeNodeAnnotation = "kwok.x-k8s.io/node"
	fakeNodeValue      = "fake"
	// FakeNodeLabel marks the fake nodes; tests may select on it.
	FakeNodeLabel = "agent-sandbox.dev/fake-node"
)

// ServiceClusterIPRange is inside loopback, like the pod CIDRs: nothing in
// a test may ever address a non-loopback IP, and ClusterIPs are IPs tests
// could dial.
const ServiceClusterIPRange = "127.96.0.0/16"

// Options configure a control plane.
type Options struct {
	// Dir holds certificates, etcd data, logs, pid files and the kubeconfig.
	// It is created if missing; its previous content is removed.
	Dir string
	// Binaries to run.
	Binaries Binaries
	// Detach starts the processes in their own sessions so they outlive the
	// caller; stop them with StopDir. Otherwise they die with the caller.
	Detach bool
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// PodCIDRSlot picks which part of each node's pod range this control
	// plane allocates from (see PodCIDR), in [0, PodCIDRSlots). Control
	// planes that run at once and bind real servers to their Pod IPs (test
	// packages run in parallel) need different slots, or two of them hand
	// out the same loopback address. 0 is the default of a lone cluster.
	PodCIDRSlot int
	// AuditLog makes the API server log every request at Metadata level
	// (user, user agent, verb, object; no bodies) to AuditLogPath, so a
	// test can check what the API server itself saw, e.g. which client
	// sent a write.
	AuditLog bool
	// FeatureGates is the API server's --feature-gates when not empty: for
	// experiments with alpha features (e.g. CBORServingAndStorage=true in
	// make bench); tests run with the defaults.
	FeatureGates string
	// Profiling serves the API server's /debug/pprof (admin only), for
	// profiling it under a benchmark's load; off otherwise, as in a
	// hardened cluster.
	Profiling bool
}

// auditPolicy logs each request once, when its response is complete
// (watches: when the response starts), at Metadata level.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// ControlPlane is a running local control plane.
type ControlPlane struct {
	opts  Options
	pki   *pki
	procs map[string]*process

	apiPort int
	// Config is an admin (system:masters) client config.
	Config *rest.Config
	// KubeconfigPath is the admin kubeconfig written into Options.Dir.
	KubeconfigPath string
	// Nodes are the names of the fake nodes, once StartWorkloads ran.
	Nodes []string
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Start runs etcd and kube-apiserver and waits until the API is ready.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.Dir == "" {
		return nil, errors.New("localcluster: Options.Dir is required")
	}
	if opts.PodCIDRSlot < 0 || opts.PodCIDRSlot >= PodCIDRSlots {
		return nil, fmt.Errorf("localcluster: PodCIDRSlot %d is outside [0, %d)", opts.PodCIDRSlot, PodCIDRSlots)
	}
	// Components run with the state directory as their working directory
	// and get absolute paths in their flags.
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	cp := &ControlPlane{opts: opts, procs: map[string]*process{}}
	ok := false
	defer func() {
		if !ok {
			_ = cp.Stop()
		}
	}()

	if cp.pki, err = newPKI(filepath.Join(opts.Dir, "pki")); err != nil {
		return nil, fmt.Errorf("creating certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer := ports[0], ports[1]
	cp.apiPort = ports[2]

	start := time.Now()
	clientURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := cp.start(etcdName, opts.Binaries.Etcd,
		"--name=default",
		"--data-dir="+filepath.Join(opts.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Durability is worthless for a throwaway test cluster and fsync is
		// most of etcd's latency on these machines.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	); err != nil {
		return nil, err
	}

	p := cp.pki
	// Empty paths leave auditing off.
	var auditPolicyFile, auditLog string
	if opts.AuditLog {
		auditPolicyFile, auditLog = filepath.Join(opts.Dir, "audit-policy.yaml"), cp.AuditLogPath()
		if err := os.WriteFile(auditPolicyFile, []byte(auditPolicy), 0o644); err != nil {
			return nil, err
		}
	}
	apiServerArgs := []string{
		"--etcd-servers=" + clientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.apiPort),
		// 127.0.0.1 is not a valid Endpoints address, so the reconciler of
		// the kubernetes Service would fail forever.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--tls-cert-file=" + p.path(servingCertFile),
		"--tls-private-key-file=" + p.path(servingKeyFile),
		"--client-ca-file=" + p.path(caCertFile),
		"--service-account-key-file=" + p.path(saPubFile),
		"--service-account-signing-key-file=" + p.path(saKeyFile),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC",
		// As in the kind cluster of make e2e: creating children with
		// blockOwnerDeletion needs update on the owner's finalizers, which the
		// release RBAC must grant.
		"--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
		"--allow-privileged=true",
		"--profiling=" + strconv.FormatBool(opts.Profiling),
		"--audit-policy-file=" + auditPolicyFile,
		"--audit-log-path=" + auditLog,
		"--audit-log-format=json",
		"--v=1",
	}
	if opts.FeatureGates != "" {
		apiServerArgs = append(apiServerArgs, "--feature-gates="+opts.FeatureGates)
	}
	if err := cp.start(apiServerName, opts.Binaries.APIServer, apiServerArgs...); err != nil {
		return nil, err
	}

	if err := cp.writeKubeconfig(); err != nil {
		return nil, err
	}
	if err := cp.waitFor(ctx, apiServerName, cp.apiReady); err != nil {
		return nil, err
	}
	opts.logf("API server ready on https://127.0.0.1:%d in %s", cp.apiPort, time.Since(start).Round(time.Millisecond))
	ok = true
	return cp, nil
}

// Host is the API server URL.
func (cp *ControlPlane) Host() string { return cp.Config.Host }

// AuditLogPath is the API server's audit log (JSON lines), written when
// Options.AuditLog is set.
func (cp *ControlPlane) AuditLogPath() string { return filepath.Join(cp.opts.Dir, "audit.log") }

// Dir is the state directory.
func (cp *ControlPlane) Dir() string { return cp.opts.Dir }

// StartWorkloads runs kube-controller-manager, kube-scheduler and kwok, and
// registers nodes fake nodes, so that Pods are scheduled, become Running and
// Ready, get IPs inside 127.0.0.0/8, and owner references are garbage
// collected. It returns once every node is Ready and the service-account
// controller has populated the default namespace.
func (cp *ControlPlane) StartWorkloads(ctx context.Context, nodes int) error {
	start := time.Now()
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	kubeconfig := cp.KubeconfigPath
	p := cp.pki
	if err := cp.start(controllerManagerName, cp.opts.Binaries.ControllerManager,
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+p.path(saKeyFile),
		"--root-ca-file="+p.path(caCertFile),
		"--service-cluster-ip-range="+ServiceClusterIPRange,
		// The default QPS of 20 makes kcm the bottleneck of any test that
		// creates more than a handful of Pods.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		// Bind PersistentVolumeClaims to waiting volumes within a second
		// rather than the default 15s.
		"--pvclaimbinder-sync-period=1s",
		"--v=1",
	); err != nil {
		return err
	}

	schedConfig := filepath.Join(cp.opts.Dir, "kube-scheduler.yaml")
	if err := os.WriteFile(schedConfig, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
`, kubeconfig)), 0o644); err != nil {
		return err
	}
	if err := cp.start(schedulerName, cp.opts.Binaries.Scheduler,
		"--config="+schedConfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[1]),
		"--v=1",
	); err != nil {
		return err
	}

	kwokConfig, err := cp.writeKwokConfig()
	if err != nil {
		return err
	}
	if err := cp.start(kwokName, cp.opts.Binaries.Kwok,
		"--kubeconfig="+kubeconfig,
		"--config="+kwokConfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+fakeNodeAnnotation+"="+fakeNodeValue,
		// Pods of a node without a podCIDR would get IPs from this pool.
		"--cidr=127.255.0.0/16",
		"--node-ip=127.0.0.1",
		"--node-lease-duration-seconds=40",
	); err != nil {
		return err
	}

	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	for i := range nodes {
		name, err := cp.createNode(ctx, client, i)
		if err != nil {
			return err
		}
		cp.Nodes = append(cp.Nodes, name)
	}
	if err := cp.waitFor(ctx, kwokName, func(ctx context.Context) (bool, error) {
		return nodesReady(ctx, client, cp.Nodes)
	}); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, controllerManagerName, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, schedulerName, func(ctx context.Context) (bool, error) {
		return healthy(ctx, ports[1]), nil
	}); err != nil {
		return err
	}
	cp.opts.logf("%d fake nodes Ready; controller manager, scheduler and kwok running in %s",
		nodes, time.Since(start).Round(time.Millisecond))
	return nil
}

// PodCIDRSlots is how many control planes can run at once without sharing
// a pod IP: each node's 127.(10+i).0.0/16 is cut into this many /20s.
const PodCIDRSlots = 16

// PodCIDR returns the pod CIDR of the i-th fake node in a slot:
// 127.(10+i).(16*slot).0/20, so every pod IP is a loopback address, each
// node has room for 4k pods, and control planes in different slots never
// hand out the same address.
func PodCIDR(slot, i int) string { return fmt.Sprintf("127.%d.%d.0/20", 10+i, 16*slot) }

// MaxNodes bounds the fake nodes so their pod CIDRs stay inside 127/8 and
// clear of ServiceClusterIPRange and kwok's fallback pool.
const MaxNodes = 80

// MaxProcessNodes bounds the process nodes (test/processnode) of one slot.
const MaxProcessNodes = 16

// ProcessNodePodCIDR returns the pod CIDR of the i-th process node (the
// development kubelet of test/processnode, which runs the sandbox runtime
// as a local process) in a slot: 127.(100+i).(16*slot).0/20. It is the
// same shape as PodCIDR, but above the kwok nodes' ranges (127.10-127.89)
// and ServiceClusterIPRange, and below kwok's fallback pool, so a process
// node and kwok never hand out the same loopback address.
func ProcessNodePodCIDR(slot, i int) string { return fmt.Sprintf("127.%d.%d.0/20", 100+i, 16*slot) }

func (cp *ControlPlane) createNode(ctx context.Context, client kubernetes.Interface, i int) (string, error) {
	if i >= MaxNodes {
		return "", fmt.Errorf("at most %d fake nodes", MaxNodes)
	}
	name := fmt.Sprintf("fake-node-%d", i)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{fakeNodeAnnotation: fakeNodeValue},
			Labels: map[string]string{
				FakeNodeLabel:                   "true",
				corev1.LabelHostname:            name,
				corev1.LabelOSStable:            "linux",
				corev1.LabelArchStable:          "amd64",
				"node-role.kubernetes.io/agent": "",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: PodCIDR(cp.opts.PodCIDRSlot, i), PodCIDRs: []string{PodCIDR(cp.opts.PodCIDRSlot, i)}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("64"),
				corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods:   resource.MustParse("1000"),
			},
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("64"),
				corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods:   resource.MustParse("1000"),
			},
		},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating fake node %s: %w", name, err)
	}
	return name, nil
}

func nodesReady(ctx context.Context, client kubernetes.Interface, names []string) (bool, error) {
	for _, name := range names {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ready := slices.ContainsFunc(node.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		})
		if !ready {
			return false, nil
		}
	}
	return true, nil
}

// writeKwokConfig concatenates the Stage documents kwok needs into one
// config file.
func (cp *ControlPlane) writeKwokConfig() (string, error) {
	entries, err := os.ReadDir(cp.opts.Binaries.KwokStages)
	if err != nil {
		return "", fmt.Errorf("reading kwok stages: %w", err)
	}
	var docs []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cp.opts.Binaries.KwokStages, e.Name()))
		if err != nil {
			return "", err
		}
		docs = append(docs, strings.TrimSpace(strings.TrimPrefix(string(b), "---")))
	}
	if len(docs) == 0 {
		return "", fmt.Errorf("no kwok stages in %s", cp.opts.Binaries.KwokStages)
	}
	path := filepath.Join(cp.opts.Dir, "kwok.yaml")
	return path, os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644)
}

func (cp *ControlPlane) start(name, binary string, args ...string) error {
	p, err := startProcess(cp.opts.Dir, name, binary, args, cp.opts.Detach)
	if err != nil {
		return err
	}
	cp.procs[name] = p
	cp.opts.logf("started %s (pid %d, log %s)", name, p.pid, p.logPath)
	return nil
}

// waitFor polls cond for up to a minute until it holds, failing early
// with the component's log tail when the component exits.
func (cp *ControlPlane) waitFor(ctx context.Context, name string, cond wait.ConditionWithContextFunc) error {
	proc := cp.procs[name]
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if proc != nil && !proc.running() {
			return false, fmt.Errorf("%s exited", name)
		}
		return cond(ctx)
	})
	if err != nil {
		tail := ""
		if proc != nil {
			tail = "\n--- last lines of " + proc.logPath + " ---\n" + proc.tail(30)
		}
		return fmt.Errorf("waiting for %s: %w%s", name, err, tail)
	}
	return nil
}

func (cp *ControlPlane) apiReady(ctx context.Context) (bool, error) {
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return false, err
	}
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil && string(body) == "ok", nil
}

// healthy probes a component's secure port; /healthz needs no credentials.
func healthy(ctx context.Context, port int) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), http.NoBody)
	if err != nil {
		return false
	}
	// The component serves a self-signed certificate; this probe sends
	// nothing secret and only reads "ok".
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }() // only the status matters
	return resp.StatusCode == http.StatusOK
}

func (cp *ControlPlane) writeKubeconfig() error {
	p := cp.pki
	read := func(name string) ([]byte, error) { return os.ReadFile(p.path(name)) }
	caData, err := read(caCertFile)
	if err != nil {
		return err
	}
	certData, err := read(adminCertFile)
	if err != nil {
		return err
	}
	keyData, err := read(adminKeyFile)
	if err != nil {
		return err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(cp.apiPort)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: caData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certData, ClientKeyData: keyData}
	cfg.Contexts["agent-sandbox-local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin", Namespace: metav1.NamespaceDefault}
	cfg.CurrentContext = "agent-sandbox-local"
	cp.KubeconfigPath = filepath.Join(cp.opts.Dir, KubeconfigFile)
	if err := clientcmd.WriteToFile(*cfg, cp.KubeconfigPath); err != nil {
		return err
	}
	cp.Config = &rest.Config{
		Host:            host,
		TLSClientConfig: rest.TLSClientConfig{CAData: caData, CertData: certData, KeyData: keyData},
		// Tests create objects in bursts; the client-side limiter must not
		// be what they measure.
		QPS:   200,
		Burst: 400,
	}
	return nil
}

// Stop stops every component this ControlPlane started, in reverse order,
// and leaves the state directory for inspection.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for _, name := range slices.Backward(startOrder) {
		if p, ok := cp.procs[name]; ok {
			errs = append(errs, p.stop(15*time.Second))
		}
	}
	return errors.Join(errs...)
}

// StartDetached starts another process (such as the controller under
// development) beside a detached control plane, recorded in the same state
// directory so StopDir stops it too.
func StartDetached(dir, name, binary string, args ...string) (pid int, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	p, err := startProcess(dir, name, binary, args, true)
	if err != nil {
		return 0, err
	}
	return p.pid, nil
}

// StopDir stops the processes of a detached control plane from the pid
// files in its state directory: first anything started beside it (clients
// of the API), then the components in reverse start order. Only PIDs that
// still run the recorded binary are signalled.
func StopDir(dir string, logf func(string, ...any)) error {
	entries, err := os.ReadDir(filepath.Join(dir, "pids"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var extra []string
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".pid")
		if strings.HasSuffix(e.Name(), ".pid") && !slices.Contains(startOrder, name) {
			extra = append(extra, name)
		}
	}
	var errs []error
	for _, name := range append(extra, reversed(startOrder)...) {
		p, err := readProcess(dir, name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !p.running() {
			if logf != nil {
				logf("%s (pid %d) is not running", name, p.pid)
			}
		} else {
			if err := p.stop(15 * time.Second); err != nil {
				errs = append(errs, err)
				continue
			}
			if logf != nil {
				logf("stopped %s (pid %d)", name, p.pid)
			}
		}
		_ = os.Remove(p.pidFile(dir))
		_ = os.Remove(cmdlineFile(dir, name))
	}
	return errors.Join(errs...)
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// freePorts reserves n distinct free loopback ports. The listeners are
// closed before the ports are used, so another process could in principle
// take one first; the component then fails to bind and Start reports it.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

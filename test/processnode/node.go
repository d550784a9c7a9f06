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

// Package processnode is a development-only kubelet for local clusters
// (make dev, integration and e2e tests) that have no container engine: it
// registers Nodes of its own and, for every Pod the scheduler binds to
// them, runs the sandbox runtime (cmd/sandbox-runtime) as a local process
// listening on the Pod's IP, an address inside 127.0.0.0/8 from the node's
// podCIDR. It reports the Pod Running and Ready once the runtime answers
// its health check, NotReady when it stops answering, restarts or fails it
// per restartPolicy when it exits, and kills it when the Pod is deleted.
//
// DEVELOPMENT ONLY. There is no isolation of any kind: the runtime and
// every command sent to it run as the user of the process node, with that
// user's files, network and privileges. The container image and command
// are ignored. Never point it at a cluster that untrusted users can create
// Pods in.
//
// The Nodes carry the label and the NoSchedule taint NodeLabel, so only
// Pods that ask for them (Schedule) land there; kwok, which manages only
// Nodes annotated kwok.x-k8s.io/node=fake, leaves them alone.
package processnode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

const (
	// NodeLabel is the label (value "true") and the NoSchedule taint key
	// of every process node. Pods reach a process node only by selecting
	// the label and tolerating the taint (Schedule does both).
	NodeLabel = "agents.x-k8s.io/process-node"
	// DefaultNodeName is the node registered when Options.Nodes is empty.
	DefaultNodeName = "process-node-0"
	// UserAgent is the node's user agent towards the API server.
	UserAgent = "process-node"

	// HostIP is every process node's address: its runtimes run on this
	// machine.
	HostIP = "127.0.0.1"

	// As the kubelet: a Lease renewed every 10s and valid for 40s is the
	// heartbeat; the Node status is rewritten every minute.
	leaseDurationSeconds = 40
	leaseRenewPeriod     = 10 * time.Second
	nodeStatusPeriod     = time.Minute
	nodeLeaseNamespace   = "kube-node-lease"
)

// Options configure a process node.
type Options struct {
	// Config reaches the API server. The node creates Nodes and Leases,
	// writes Pod status and deletes Pods, so an admin config is simplest.
	Config *rest.Config
	// Nodes are the names of the Nodes to register; [DefaultNodeName]
	// when empty. The i-th gets localcluster.ProcessNodePodCIDR(PodCIDRSlot, i).
	Nodes []string
	// PodCIDRSlot is the control plane's slot (localcluster.Options.PodCIDRSlot),
	// so Pod IPs never collide with another control plane's.
	PodCIDRSlot int
	// RuntimeBinary is the sandbox-runtime binary to run for each Pod.
	RuntimeBinary string
	// StateDir holds the Pods' records, working directories, volumes and
	// logs. A restarted node given the same directory adopts the runtimes
	// of Pods that still exist and kills the others.
	StateDir string
	// ProbePeriod is how often a Ready runtime's health is checked
	// (default 2s); a runtime that is not Ready yet is checked every
	// ProbePeriod/4.
	ProbePeriod time.Duration
	// MaxGracePeriod caps the time between SIGTERM and SIGKILL when a Pod
	// is deleted (default 10s; the Pod's own grace period if shorter).
	MaxGracePeriod time.Duration
	// KillRuntimesOnExit has the kernel kill the runtimes when the process
	// node's process dies (tests: a crashed test binary leaks nothing).
	// Off, they outlive it and a restarted node adopts them, as containers
	// outlive a kubelet restart.
	KillRuntimesOnExit bool
	// Workers is the number of Pods handled at once (default 4).
	Workers int
	// Provision creates the StorageClass StorageClassName and provisions
	// its PersistentVolumeClaims (see provisioner), so sandboxes on the
	// process node can have volumes that outlive their Pods. Only one
	// process node of a cluster should provision.
	Provision bool
}

// nodeAgent is one registered Node.
type nodeAgent struct {
	name    string
	cidr    string
	ipam    *ipam
	factory informers.SharedInformerFactory
	pods    listers.PodLister
	synced  cache.InformerSynced
}

// Node is a running process node (one or more registered Nodes).
type Node struct {
	opts  Options
	kube  kubernetes.Interface
	store *store
	nodes []*nodeAgent
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	probe *http.Client
	prov  *provisioner

	mu      sync.Mutex
	records map[types.UID]*record
	procs   map[types.UID]*runtimeProc

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start registers the Nodes, takes over the state directory (adopting or
// killing the runtimes a previous run left) and starts serving Pods. Stop
// ends it.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if opts.Config == nil {
		return nil, errors.New("processnode: Options.Config is required")
	}
	if opts.StateDir == "" {
		return nil, errors.New("processnode: Options.StateDir is required")
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = []string{DefaultNodeName}
	}
	if len(opts.Nodes) > localcluster.MaxProcessNodes {
		return nil, fmt.Errorf("processnode: at most %d nodes", localcluster.MaxProcessNodes)
	}
	if opts.ProbePeriod <= 0 {
		opts.ProbePeriod = 2 * time.Second
	}
	if opts.MaxGracePeriod <= 0 {
		opts.MaxGracePeriod = 10 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	bin, err := filepath.Abs(opts.RuntimeBinary)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("processnode: runtime binary %q is not an executable file", opts.RuntimeBinary)
	}
	opts.RuntimeBinary = bin

	cfg := rest.CopyConfig(opts.Config)
	rest.AddUserAgent(cfg, UserAgent)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	st, err := openStore(opts.StateDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Node{
		opts: opts, kube: kube, store: st, cancel: cancel,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "process-node"}),
		probe: &http.Client{
			Timeout: time.Second,
			// Pod IPs are loopback: never through a proxy; and a fresh
			// connection per probe, as the kubelet's, so a runtime that
			// stops accepting is noticed.
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		records: map[types.UID]*record{},
		procs:   map[types.UID]*runtimeProc{},
	}
	ok := false
	defer func() {
		if !ok {
			n.shutdown(false)
		}
	}()
	logger := klog.FromContext(ctx)
	for i, name := range opts.Nodes {
		cidr := localcluster.ProcessNodePodCIDR(opts.PodCIDRSlot, i)
		a, err := newIPAM(cidr)
		if err != nil {
			return nil, err
		}
		agent := &nodeAgent{name: name, cidr: cidr, ipam: a}
		if err := n.registerNode(ctx, agent); err != nil {
			return nil, err
		}
		agent.factory = informers.NewSharedInformerFactoryWithOptions(kube, 0,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", name).String()
			}))
		podInformer := agent.factory.Core().V1().Pods()
		agent.pods = podInformer.Lister()
		reg, err := podInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
			AddFunc: n.enqueue,
			UpdateFunc: func(old, cur any) {
				if old.(*corev1.Pod).ResourceVersion != cur.(*corev1.Pod).ResourceVersion {
					n.enqueue(cur)
				}
			},
			DeleteFunc: n.enqueue,
		}, cache.HandlerOptions{Logger: &logger})
		if err != nil {
			return nil, err
		}
		agent.synced = reg.HasSynced
		n.nodes = append(n.nodes, agent)
		logger.Info("Registered process node", "node", name, "podCIDR", cidr)
	}
	for _, a := range n.nodes {
		a.factory.Start(ctx.Done())
	}
	for _, a := range n.nodes {
		if !cache.WaitForNamedCacheSyncWithContext(ctx, a.synced) {
			return nil, fmt.Errorf("processnode: pod informer of %s never synced", a.name)
		}
	}
	if err := n.recover(ctx); err != nil {
		return nil, err
	}
	if opts.Provision {
		if n.prov, err = n.startProvisioner(ctx); err != nil {
			return nil, err
		}
	}
	for _, a := range n.nodes {
		n.wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) { n.renewLease(ctx, a) }, leaseRenewPeriod)
		})
		n.wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				if err := n.updateNodeStatus(ctx, a); err != nil {
					utilruntime.HandleErrorWithContext(ctx, err, "Updating node status", "node", a.name)
				}
			}, nodeStatusPeriod)
		})
	}
	for range opts.Workers {
		n.wg.Go(func() { wait.UntilWithContext(ctx, n.worker, time.Second) })
	}
	ok = true
	return n, nil
}

// Names are the registered Nodes.
func (n *Node) Names() []string {
	names := make([]string, len(n.nodes))
	for i, a := range n.nodes {
		names[i] = a.name
	}
	return names
}

// StateDir is the absolute state directory.
func (n *Node) StateDir() string { return n.store.dir }

// Stop stops serving Pods and kills every runtime this node runs (their
// records stay, so a node started again on the state directory restarts
// the runtimes of Pods that still exist). The Nodes stay registered and
// go NotReady when their Leases expire, as after a kubelet stops.
func (n *Node) Stop() { n.shutdown(true) }

// Abandon stops serving Pods but leaves the runtimes running, as a crash
// of the process node would (with KillRuntimesOnExit off): what a node
// started again on the same state directory must clean up or adopt.
func (n *Node) Abandon() { n.shutdown(false) }

func (n *Node) shutdown(killRuntimes bool) {
	n.stopOnce.Do(func() {
		n.cancel()
		n.queue.ShutDown()
		if n.prov != nil {
			n.prov.queue.ShutDown()
		}
		n.wg.Wait()
		for _, a := range n.nodes {
			if a.factory != nil {
				a.factory.Shutdown()
			}
		}
		if n.prov != nil {
			n.prov.factory.Shutdown()
		}
		if killRuntimes {
			n.mu.Lock()
			recs := make([]*record, 0, len(n.records))
			for _, r := range n.records {
				recs = append(recs, r)
			}
			n.mu.Unlock()
			var wg sync.WaitGroup
			for _, r := range recs {
				wg.Go(func() { n.stopRuntime(context.Background(), r, n.opts.MaxGracePeriod) })
			}
			wg.Wait()
		}
		_ = n.store.close()
	})
}

// registerNode creates the Node, or takes over one a previous run
// registered, and reports it Ready.
func (n *Node) registerNode(ctx context.Context, a *nodeAgent) error {
	nodes := n.kube.CoreV1().Nodes()
	taint := corev1.Taint{Key: NodeLabel, Value: "true", Effect: corev1.TaintEffectNoSchedule}
	node, err := nodes.Get(ctx, a.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: a.name, Labels: map[string]string{
				NodeLabel:              "true",
				corev1.LabelHostname:   a.name,
				corev1.LabelOSStable:   goruntime.GOOS,
				corev1.LabelArchStable: goruntime.GOARCH,
			}},
			Spec: corev1.NodeSpec{PodCIDR: a.cidr, PodCIDRs: []string{a.cidr}, Taints: []corev1.Taint{taint}},
		}
		if _, err := nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", a.name, err)
		}
	case err != nil:
		return fmt.Errorf("getting node %s: %w", a.name, err)
	default:
		if node.Labels[NodeLabel] != "true" {
			// Never take over a Node that is not a process node (a kwok
			// node, or a real one): its Pods would be run here.
			return fmt.Errorf("node %s exists and is not a process node (no %s=true label)", a.name, NodeLabel)
		}
		if node.Spec.PodCIDR != a.cidr {
			return fmt.Errorf("node %s exists with podCIDR %s, not %s: delete it or use another name or slot", a.name, node.Spec.PodCIDR, a.cidr)
		}
	}
	if err := n.updateNodeStatus(ctx, a); err != nil {
		return fmt.Errorf("updating status of node %s: %w", a.name, err)
	}
	n.renewLease(ctx, a)
	return nil
}

// updateNodeStatus reports the Node Ready with its capacity, as the
// kubelet's periodic status update does.
func (n *Node) updateNodeStatus(ctx context.Context, a *nodeAgent) error {
	// The node lifecycle controller writes new Nodes too (taints,
	// annotations): retry on conflict from a fresh read.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return n.tryUpdateNodeStatus(ctx, a) })
}

func (n *Node) tryUpdateNodeStatus(ctx context.Context, a *nodeAgent) error {
	node, err := n.kube.CoreV1().Nodes().Get(ctx, a.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting node %s: %w", a.name, err)
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	node.Status.Capacity, node.Status.Allocatable = capacity, capacity
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: HostIP}, {Type: corev1.NodeHostName, Address: a.name}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
		KubeletVersion:          "v0.0.0-process-node",
		ContainerRuntimeVersion: "process://sandbox-runtime",
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "process node is posting ready status (development only, no isolation)"},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID"},
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = now
		conds[i].LastTransitionTime = now
		for _, old := range node.Status.Conditions {
			if old.Type == conds[i].Type && old.Status == conds[i].Status {
				conds[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	node.Status.Conditions = conds
	_, err = n.kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

// renewLease is the node heartbeat the node lifecycle controller watches.
func (n *Node) renewLease(ctx context.Context, a *nodeAgent) {
	leases := n.kube.CoordinationV1().Leases(nodeLeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: nodeLeaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(a.name), LeaseDurationSeconds: ptr.To[int32](leaseDurationSeconds), RenewTime: &now,
			},
		}
		if node, err := n.kube.CoreV1().Nodes().Get(ctx, a.name, metav1.GetOptions{}); err == nil {
			// Owned by the Node, as the kubelet's: deleting the Node
			// deletes its Lease.
			lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	case err == nil:
		lease.Spec.HolderIdentity = ptr.To(a.name)
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](leaseDurationSeconds)
		lease.Spec.RenewTime = &now
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Renewing node lease", "node", a.name)
	}
}

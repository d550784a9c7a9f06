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

// Command process-node is the development kubelet 'make dev' runs beside
// the local control plane (test/processnode): it registers Nodes labelled
// and tainted agents.x-k8s.io/process-node and runs the sandbox runtime as
// a local process, on a loopback Pod IP, for every Pod bound to them.
//
// DEVELOPMENT ONLY: nothing is isolated. Every command sent to a sandbox
// on a process node runs as the user who started this program, with that
// user's files and network.
package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/signals"
	"github.com/agentsandbox/agent-sandbox/test/processnode"
)

func main() {
	klog.InitFlags(nil)
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the local cluster; the node creates Nodes and Leases, writes Pod status and deletes Pods")
	stateDir := flag.String("state-dir", ".cache/cluster/process-node", "where Pod records, working directories, volumes and runtime logs live; a restart on the same directory adopts the runtimes of Pods that still exist")
	runtimeBin := flag.String("runtime-binary", "bin/sandbox-runtime", "the sandbox-runtime binary run for each Pod")
	nodes := flag.String("nodes", processnode.DefaultNodeName, "comma-separated names of the Nodes to register")
	slot := flag.Int("pod-cidr-slot", 0, "pod CIDR slot of the control plane (0 for make dev)")
	probe := flag.Duration("probe-period", 2*time.Second, "how often a Ready runtime's health is checked")
	provision := flag.Bool("provision", true, "create the StorageClass "+processnode.StorageClassName+" and provision its PersistentVolumeClaims as directories of the state directory")
	killOnExit := flag.Bool("kill-runtimes-on-exit", false, "have the kernel kill the runtimes if this process dies; off, a restarted node adopts them")
	flag.Parse()

	ctx := signals.SetupSignalHandler()
	logger := klog.FromContext(ctx)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logger.Error(err, "Loading kubeconfig")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	cfg.QPS, cfg.Burst = 50, 100
	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		logger.Error(err, "Resolving the state directory")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	logger.Info("Starting process node: DEVELOPMENT ONLY, sandboxes run as local processes of this user with no isolation", "stateDir", dir)
	n, err := processnode.Start(ctx, processnode.Options{
		Config: cfg, Nodes: strings.Split(*nodes, ","), PodCIDRSlot: *slot,
		RuntimeBinary: *runtimeBin, StateDir: dir, ProbePeriod: *probe, KillRuntimesOnExit: *killOnExit,
		Provision: *provision,
	})
	if err != nil {
		logger.Error(err, "Starting process node")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	logger.Info("Process node running", "nodes", n.Names())
	<-ctx.Done()
	logger.Info("Stopping: killing every runtime")
	n.Stop()
	logger.Info("Stopped")
	klog.Flush()
}

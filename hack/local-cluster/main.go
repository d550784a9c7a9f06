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

// Command local-cluster starts and stops the source-built local control
// plane for 'make cluster-up', 'make cluster-down' and 'make dev', and runs
// other processes (the controller) beside it. The processes outlive the
// command; their PIDs are recorded in the state directory and 'down'
// signals exactly those. 'objects' and 'container-args' read a rendered
// release manifest, for running a released component as a local process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".cache/cluster", "state directory: certificates, data, logs, pid files, kubeconfig")
	nodes := fs.Int("nodes", 3, "number of kwok fake nodes (0 runs etcd and kube-apiserver only)")
	crds := fs.String("crds", "", "directory of CRD manifests to install once the API is up")
	featureGates := fs.String("apiserver-feature-gates", "", "with up: the API server's --feature-gates, e.g. CBORServingAndStorage=true (experiments)")
	profiling := fs.Bool("apiserver-profiling", false, "with up: serve the API server's /debug/pprof to the admin kubeconfig (experiments)")
	name := fs.String("name", "", "with run: the name of the process (its log and pid file)")
	as := fs.String("as", "", "with kubeconfig: the user the new kubeconfig impersonates, e.g. system:serviceaccount:NS:NAME")
	out := fs.String("out", "", "with kubeconfig: where to write it")
	file := fs.String("f", "", "with objects and container-args: a rendered manifest (kubectl kustomize DIR)")
	kinds := fs.String("kinds", "", "with objects: comma-separated kinds to print")
	deployment := fs.String("deployment", "", "with container-args: the Deployment")
	container := fs.String("container", "", "with container-args: its container")
	_ = fs.Parse(os.Args[2:])

	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[local-cluster] "+format+"\n", args...)
	}
	switch os.Args[1] {
	case "up":
		// Only up waits on anything a signal should cut short. cancel
		// runs before os.Exit, which would skip a deferred call.
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := up(ctx, localcluster.Options{Dir: *dir, FeatureGates: *featureGates, Profiling: *profiling, Logf: logf}, *nodes, *crds)
		cancel()
		if err != nil {
			logf("%v", err)
			os.Exit(1)
		}
	case "run":
		// local-cluster run -dir DIR -name NAME -- BINARY ARGS...
		if *name == "" || fs.NArg() == 0 {
			usage()
		}
		pid, err := localcluster.StartDetached(*dir, *name, fs.Arg(0), fs.Args()[1:]...)
		if err != nil {
			logf("%v", err)
			os.Exit(1)
		}
		logf("started %s (pid %d, log %s/logs/%s.log)", *name, pid, *dir, *name)
	case "kubeconfig":
		// local-cluster kubeconfig -dir DIR -as USER -out FILE: the admin
		// kubeconfig, impersonating USER, so a local process runs with
		// exactly USER's RBAC.
		if *as == "" || *out == "" {
			usage()
		}
		if err := impersonatingKubeconfig(filepath.Join(*dir, localcluster.KubeconfigFile), *as, *out); err != nil {
			logf("%v", err)
			os.Exit(1)
		}
	case "objects":
		// local-cluster objects -f FILE -kinds K1,K2: the manifest's
		// objects of those kinds, e.g. a component's RBAC without its
		// Deployment.
		if *file == "" || *kinds == "" {
			usage()
		}
		raw, err := os.ReadFile(*file)
		if err == nil {
			raw, err = manifestObjects(raw, strings.Split(*kinds, ","))
		}
		if err != nil {
			logf("%s: %v", *file, err)
			os.Exit(1)
		}
		_, _ = os.Stdout.Write(raw)
	case "container-args":
		// local-cluster container-args -f FILE -deployment D -container C:
		// the container's args, one per line, to run it as a process
		// configured as the release configures it.
		if *file == "" || *deployment == "" || *container == "" {
			usage()
		}
		raw, err := os.ReadFile(*file)
		var args []string
		if err == nil {
			args, err = containerArgs(raw, *deployment, *container)
		}
		if err != nil {
			logf("%s: %v", *file, err)
			os.Exit(1)
		}
		for _, a := range args {
			if strings.Contains(a, "\n") {
				logf("%s: an argument of %s/%s spans lines: %q", *file, *deployment, *container, a)
				os.Exit(1)
			}
			fmt.Println(a)
		}
	case "down":
		if err := localcluster.StopDir(*dir, logf); err != nil {
			logf("%v", err)
			os.Exit(1)
		}
	default:
		usage()
	}
}

// up starts a detached cluster with opts (Dir, FeatureGates and Logf set
// by the caller).
func up(ctx context.Context, opts localcluster.Options, nodes int, crds string) error {
	dir, logf := opts.Dir, opts.Logf
	bins, err := localcluster.BinariesFromEnv()
	if err != nil {
		return err
	}
	opts.Binaries, opts.Detach = bins, true
	// A cluster from an earlier 'up' would hold the ports and the data dir.
	if err := localcluster.StopDir(dir, logf); err != nil {
		return err
	}
	start := time.Now()
	cp, err := localcluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	stopOnError := func(err error) error {
		_ = localcluster.StopDir(dir, logf)
		return err
	}
	// CRDs before the controller manager: its garbage collector discovers
	// resources at start and only every 30s afterwards.
	if crds != "" {
		names, err := localcluster.InstallCRDs(ctx, cp.Config, crds)
		if err != nil {
			return stopOnError(err)
		}
		logf("installed %d CRDs", len(names))
	}
	if nodes > 0 {
		if err := cp.StartWorkloads(ctx, nodes); err != nil {
			return stopOnError(err)
		}
	}
	logf("cluster ready in %s", time.Since(start).Round(time.Millisecond))
	fmt.Println(cp.KubeconfigPath)
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: local-cluster up|down [-dir DIR] [-nodes N] [-crds DIR]\n       local-cluster run -dir DIR -name NAME -- BINARY ARGS...\n       local-cluster kubeconfig -dir DIR -as USER -out FILE\n       local-cluster objects -f MANIFEST -kinds KIND,...\n       local-cluster container-args -f MANIFEST -deployment NAME -container NAME")
	os.Exit(2)
}

func impersonatingKubeconfig(admin, as, out string) error {
	cfg, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		return err
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = as
	}
	return clientcmd.WriteToFile(*cfg, out)
}

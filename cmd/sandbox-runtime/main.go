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

// Command sandbox-runtime serves the in-sandbox runtime API (command
// execution and file access confined to one base directory) on port 8888;
// wiring only, the logic lives in pkg/runtime.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/runtime"
	"github.com/agentsandbox/agent-sandbox/pkg/signals"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

const (
	binaryName = "sandbox-runtime"
	envListen  = "SANDBOX_LISTEN"
	// shutdownTimeout bounds the graceful HTTP shutdown after running
	// commands were killed; transfers still going then are cut off.
	shutdownTimeout = 10 * time.Second
)

func main() {
	if os.Getpid() == 1 {
		// A container's PID 1 must reap orphans; see runAsInit.
		os.Exit(runAsInit())
	}
	klog.InitFlags(nil)
	env := runtime.OptionsFromEnv(os.Getenv)
	listen := flag.String("listen", envOr(envListen, "0.0.0.0:8888"), "address to serve on (env "+envListen+")")
	flag.StringVar(&env.BaseDir, "base-dir", env.BaseDir, "directory that confines all file access and is every command's working directory; blank means "+runtime.DefaultBaseDir+" (env "+runtime.EnvBaseDir+")")
	flag.Int64Var(&env.MaxUploadBytes, "max-upload-bytes", env.MaxUploadBytes, "largest accepted upload in bytes (env "+runtime.EnvMaxUploadBytes+")")
	flag.IntVar(&env.MaxOutputBytes, "max-output-bytes", env.MaxOutputBytes, "cap on stdout and on stderr of a buffered /execute, in bytes (env "+runtime.EnvMaxOutputBytes+")")
	showVersion := flag.Bool("version", false, "print version information and exit")
	flag.Parse()

	if *showVersion {
		fmt.Print(version.Get().Banner(binaryName))
		return
	}
	if err := run(signals.SetupSignalHandler(), *listen, env); err != nil {
		klog.ErrorS(err, "Exiting")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

func run(ctx context.Context, listen string, opts runtime.Options) error {
	logger := klog.FromContext(ctx)
	opts.Logger = &logger
	handler, err := runtime.NewServer(opts)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		// No read or write timeout: uploads, downloads and commands may
		// legitimately take long; commands have their own timeouts.
	}
	logger.Info("Serving", "version", version.Get().GitVersion, "address", listener.Addr().String(), "baseDir", handler.BaseDir())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	select {
	case err := <-served:
		handler.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	logger.Info("Shutting down: killing running commands")
	// Killing first lets in-flight /execute requests answer at once
	// instead of holding the graceful shutdown up for their timeouts.
	handler.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("Stopped")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

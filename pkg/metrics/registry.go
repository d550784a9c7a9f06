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

// Package metrics builds the controller's Prometheus registry: Go and
// process collectors, build info, workqueue metrics, client-go request
// metrics and the per-controller reconcile metrics, under the names the
// reference's dashboards query.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

// NewRegistry returns a registry (never the global default) holding the
// Go, process and build-info collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(version.Get()),
	)
	return reg
}

// BuildInfo is agent_sandbox_build_info: constant 1, labelled with the
// build.
func BuildInfo(v version.Info) prometheus.Collector {
	return NamedBuildInfo("agent_sandbox_build_info", "Build information of the running binary; always 1.", v)
}

// NamedBuildInfo is a build-info gauge under another binary's name (the
// router's sandbox_router_build_info): constant 1, labelled with the build.
func NamedBuildInfo(name, help string, v version.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: name,
		Help: help,
		ConstLabels: prometheus.Labels{
			"git_version": v.GitVersion,
			"git_commit":  v.GitCommit,
			"build_date":  v.BuildDate,
			"go_version":  v.GoVersion,
			"compiler":    v.Compiler,
			"platform":    v.Platform,
		},
	})
	g.Set(1)
	return g
}

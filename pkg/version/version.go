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

// Package version holds build information, injected at link time:
//
//	-ldflags "-X github.com/agentsandbox/agent-sandbox/pkg/version.gitVersion=v0.1.0 ..."
package version

import (
	"fmt"
	"runtime"
)

var (
	gitVersion = "unknown"
	gitCommit  = "unknown"
	buildDate  = "unknown"
)

// Info describes the running binary.
type Info struct {
	GitVersion string
	GitCommit  string
	BuildDate  string
	GoVersion  string
	Compiler   string
	Platform   string
}

// Get returns the build information of this binary.
func Get() Info {
	return Info{
		GitVersion: gitVersion,
		GitCommit:  gitCommit,
		BuildDate:  buildDate,
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// Banner is the --version output of a binary called name.
func (i Info) Banner(name string) string {
	return fmt.Sprintf("%s, version %s (revision: %s)\n"+
		"  build date:       %s\n"+
		"  go version:       %s\n"+
		"  compiler:         %s\n"+
		"  platform:         %s\n",
		name, i.GitVersion, i.GitCommit, i.BuildDate, i.GoVersion, i.Compiler, i.Platform)
}

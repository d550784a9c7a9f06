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

package localcluster

import (
	"fmt"
	"os"
	"strings"
)

// Binaries names the executables of a local control plane. hack/local-cluster
// builds them from source into a cache and exports their paths in these
// environment variables.
type Binaries struct {
	Etcd              string // ETCD_BIN
	APIServer         string // KUBE_APISERVER_BIN
	ControllerManager string // KUBE_CONTROLLER_MANAGER_BIN
	Scheduler         string // KUBE_SCHEDULER_BIN
	Kwok              string // KWOK_BIN
	KwokStages        string // KWOK_STAGES_DIR: Stage YAML files kwok needs
	Kubectl           string // KUBECTL_BIN
}

// BinariesFromEnv reads the binary paths from the environment. It returns
// an error naming every variable that is unset or names no file.
func BinariesFromEnv() (Binaries, error) {
	b := Binaries{
		Etcd:              os.Getenv("ETCD_BIN"),
		APIServer:         os.Getenv("KUBE_APISERVER_BIN"),
		ControllerManager: os.Getenv("KUBE_CONTROLLER_MANAGER_BIN"),
		Scheduler:         os.Getenv("KUBE_SCHEDULER_BIN"),
		Kwok:              os.Getenv("KWOK_BIN"),
		KwokStages:        os.Getenv("KWOK_STAGES_DIR"),
		Kubectl:           os.Getenv("KUBECTL_BIN"),
	}
	var missing []string
	for env, path := range map[string]string{
		"ETCD_BIN": b.Etcd, "KUBE_APISERVER_BIN": b.APIServer,
		"KUBE_CONTROLLER_MANAGER_BIN": b.ControllerManager, "KUBE_SCHEDULER_BIN": b.Scheduler,
		"KWOK_BIN": b.Kwok, "KWOK_STAGES_DIR": b.KwokStages, "KUBECTL_BIN": b.Kubectl,
	} {
		if path == "" {
			missing = append(missing, env+" (unset)")
		} else if _, err := os.Stat(path); err != nil {
			missing = append(missing, fmt.Sprintf("%s=%s (%v)", env, path, err))
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("control-plane binaries not available: %s; run 'make cluster-build' or 'eval $(hack/local-cluster/env.sh)'",
			strings.Join(sortedStrings(missing), ", "))
	}
	return b, nil
}

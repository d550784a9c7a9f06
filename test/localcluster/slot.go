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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ClaimPodCIDRSlot reserves a PodCIDRSlot for this process among every
// process on the machine that claims one, so control planes started at
// once (go test runs integration packages in parallel) never give two
// Pods the same loopback IP: tests bind real servers to Pod IPs.
//
// The reservation is an exclusive flock on a file per slot in the system
// temp dir. The kernel drops it when the process exits, however it exits,
// so a crashed test never leaks a slot. Slot 0 is left to lone clusters
// (make dev, make bench). release gives the slot back early.
func ClaimPodCIDRSlot() (slot int, release func(), err error) {
	dir := filepath.Join(os.TempDir(), "agent-sandbox-podcidr-slots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, nil, err
	}
	for slot := 1; slot < PodCIDRSlots; slot++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("slot-%d.lock", slot)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return 0, nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return slot, func() { _ = f.Close() }, nil
		}
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, nil, fmt.Errorf("locking pod CIDR slot %d: %w", slot, err)
		}
	}
	return 0, nil, fmt.Errorf("all %d pod CIDR slots are taken by other control planes", PodCIDRSlots-1)
}

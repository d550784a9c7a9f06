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
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The state directory:
//
//	lock                    flock held while a process node uses the directory
//	pods/<pod UID>/record.json   what the node knows about the Pod (record)
//	pods/<pod UID>/runtime.log   the runtime's output
//	pods/<pod UID>/rootfs/...    the runtime's base dir when no volume holds it
//	pods/<pod UID>/volumes/<name>   emptyDir volumes
//	volumes/<PVC UID>/      PersistentVolumeClaim-backed volumes, kept across Pods
//
// Every file operation goes through an os.Root on the directory, so no
// path (a UID, a volume name, a symlink planted in a Pod's working
// directory by a command run in it) can make the node read, write or
// delete anything outside it.
const (
	lockFile   = "lock"
	podsDir    = "pods"
	volumesDir = "volumes"
	recordFile = "record.json"
	logFile    = "runtime.log"
)

// record is what the node keeps about one Pod it runs, so that it can
// adopt or kill the Pod's runtime after a restart of its own.
type record struct {
	UID       types.UID `json:"uid"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	IP        string    `json:"ip"`
	Port      int32     `json:"port"`
	// Process is the running runtime; nil between runs.
	Process *procIdentity `json:"process,omitempty"`
	// StartedAt is when Process started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// Restarts counts runtime starts after the first.
	Restarts int32 `json:"restarts,omitempty"`
	// LastExit is how the previous run ended.
	LastExit *exitInfo `json:"lastExit,omitempty"`
	// NextStart delays a restart after a crash (back-off).
	NextStart time.Time `json:"nextStart,omitzero"`
	// Phase is set once the Pod reached a terminal phase.
	Phase corev1.PodPhase `json:"phase,omitempty"`
	// Healthy is set once the runtime first answered its health check:
	// status is written only from then on.
	Healthy bool `json:"healthy,omitempty"`
}

// exitInfo is one ended run of the runtime.
type exitInfo struct {
	ExitCode   int32     `json:"exitCode"`
	Signal     int32     `json:"signal,omitempty"`
	Reason     string    `json:"reason"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt"`
}

// store is the state directory.
type store struct {
	dir  string
	root *os.Root
	lock *os.File
}

// openStore opens (creating) the state directory and takes its lock, so
// two process nodes never share one: both would adopt, and kill, the
// same runtimes.
func openStore(dir string) (*store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	s := &store{dir: dir, root: root}
	ok := false
	defer func() {
		if !ok {
			_ = s.close()
		}
	}()
	for _, d := range []string{podsDir, volumesDir} {
		if err := root.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if s.lock, err = root.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(s.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another process node", dir)
		}
		return nil, fmt.Errorf("locking state directory %s: %w", dir, err)
	}
	ok = true
	return s, nil
}

func (s *store) close() error {
	var errs []error
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	errs = append(errs, s.root.Close())
	return errors.Join(errs...)
}

// validUID accepts what the API server generates (a UUID) and nothing
// that could be a path: UIDs name directories here, and records on disk
// are not trusted.
func validUID(uid types.UID) bool {
	if len(uid) == 0 || len(uid) > 64 {
		return false
	}
	for _, r := range uid {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') && (r < 'A' || r > 'F') && r != '-' {
			return false
		}
	}
	return true
}

// podDir is the Pod's directory, relative to the state directory.
func podDir(uid types.UID) string { return path.Join(podsDir, string(uid)) }

// volumeDir is the directory of a PVC-backed volume, relative to the state
// directory.
func volumeDir(pvcUID types.UID) string { return path.Join(volumesDir, string(pvcUID)) }

// abs turns a path relative to the state directory into the absolute
// path a child process is given.
func (s *store) abs(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

// mkdirAll creates a directory inside the state directory.
func (s *store) mkdirAll(rel string) error { return s.root.MkdirAll(rel, 0o755) }

// openLog opens the Pod's runtime log for appending.
func (s *store) openLog(uid types.UID) (*os.File, error) {
	if err := s.root.MkdirAll(podDir(uid), 0o700); err != nil {
		return nil, err
	}
	return s.root.OpenFile(path.Join(podDir(uid), logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// save writes r atomically (a crash leaves the old record or the new one).
func (s *store) save(r *record) error {
	if !validUID(r.UID) {
		return fmt.Errorf("invalid pod UID %q", r.UID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	dir := podDir(r.UID)
	if err := s.root.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path.Join(dir, recordFile+".tmp")
	if err := s.root.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return s.root.Rename(tmp, path.Join(dir, recordFile))
}

// load reads every record. Directories that hold no readable record for
// their own UID are returned in broken: a crash can leave a Pod directory
// without a record, and a record that names another UID is not trusted.
// Entries whose names are not UIDs are not the node's and are left alone.
func (s *store) load() (records []*record, broken []types.UID, err error) {
	f, err := s.root.Open(podsDir)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.Close() }() // a directory, read-only
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		uid := types.UID(e.Name())
		if !validUID(uid) {
			continue
		}
		if e.Type()&fs.ModeType != fs.ModeDir {
			broken = append(broken, uid)
			continue
		}
		b, err := s.root.ReadFile(path.Join(podDir(uid), recordFile))
		if err != nil {
			broken = append(broken, uid)
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.UID != uid {
			broken = append(broken, uid)
			continue
		}
		records = append(records, &r)
	}
	return records, broken, nil
}

// removePod deletes the Pod's directory. os.Root's RemoveAll never follows
// a symlink: one a command planted (say rootfs/app/x -> /home) is removed,
// not what it points to.
func (s *store) removePod(uid types.UID) error {
	if !validUID(uid) {
		return fmt.Errorf("invalid pod UID %q", uid)
	}
	return s.root.RemoveAll(podDir(uid))
}

// removeVolume deletes a PVC-backed volume's directory, as removePod.
func (s *store) removeVolume(pvcUID types.UID) error {
	if !validUID(pvcUID) {
		return fmt.Errorf("invalid PVC UID %q", pvcUID)
	}
	return s.root.RemoveAll(volumeDir(pvcUID))
}

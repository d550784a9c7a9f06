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

package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// errAccessDenied marks a path that names something outside the base
// directory; every handler answers it with 403 {"message":"Access denied"}.
var errAccessDenied = errors.New("access denied")

// errThroughMissing is a symlink target that climbs with ".." out of a
// directory that does not exist; the kernel fails it (ENOENT).
var errThroughMissing = fmt.Errorf("path goes through a missing directory: %w", fs.ErrNotExist)

// maxSymlinkHops bounds symlink resolution, so a link cycle ends in ELOOP
// instead of spinning. It is filepath.EvalSymlinks' limit; the kernel's
// (40 per lookup) does not apply, because the operation afterwards gets a
// path that is free of symlinks.
const maxSymlinkHops = 255

// resolveInBase maps a client path to the path, relative to base, that an
// operation on it would really touch, or errAccessDenied if that is
// outside base. base must be absolute, clean and free of symlinks.
//
// Following the legacy runtime, leading slashes are stripped, so "/etc/x"
// names base/etc/x. The rest is cleaned lexically, which turns "a/../b"
// into "b" and leaves an escaping "../x" to be refused. Then every
// symlink is followed component by component, as the kernel would, up to
// the first component that does not exist; the missing tail is appended
// as is, because directories that uploads create there are real
// directories (a tail that climbs back out with "..", which only a
// symlink target can bring, is refused: the kernel fails it). The physical result must be base or below it.
//
// The returned relative path contains no symlinks at the time of the
// check. Handlers hand it to an os.Root on base, which refuses to leave
// base even if the tree changes between this check and the operation.
func resolveInBase(base, clientPath string) (string, error) {
	if strings.IndexByte(clientPath, 0) >= 0 {
		return "", errAccessDenied
	}
	cleaned := filepath.Clean(strings.TrimLeft(clientPath, "/"))
	if cleaned == ".." || strings.HasPrefix(cleaned, "../") {
		return "", errAccessDenied
	}
	physical, err := followSymlinks(base, cleaned)
	if err != nil && !errors.Is(err, errThroughMissing) {
		return "", err
	}
	rel, ok := relativeToBase(base, physical)
	if !ok {
		return "", errAccessDenied
	}
	if err != nil {
		return "", err
	}
	return rel, nil
}

// followSymlinks resolves rel below dir (absolute, clean) into an absolute
// clean path, following symlinks wherever they point; containment is the
// caller's check, made on the final result only, so a chain that leaves
// base and comes back in is judged by where it ends, like realpath(3).
func followSymlinks(dir, rel string) (string, error) {
	resolved, rest := dir, rel
	hops := 0
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		info, err := os.Lstat(next)
		if err != nil {
			// Missing (or unreachable) here: nothing below can be a
			// symlink the kernel would follow, so the tail is literal.
			// Unless it climbs back out with "..": only a symlink target
			// can bring one (client paths are cleaned first), the kernel
			// fails such a path (ENOENT), and cleaning it lexically would
			// land on whatever is there, symlinks to anywhere included.
			// The lexical result still goes back, so the caller refuses
			// it as an escape when it lands outside base.
			if hasDotDot(rest) {
				return filepath.Join(next, rest), fmt.Errorf("resolving %s: %w", next, errThroughMissing)
			}
			return filepath.Join(next, rest), nil
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return "", fmt.Errorf("resolving %s: %w", next, syscall.ELOOP)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", next, err)
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = target + "/" + rest
	}
	return resolved, nil
}

// hasDotDot reports whether the slash-separated path has a ".."
// component.
func hasDotDot(p string) bool {
	for p != "" {
		var name string
		name, p, _ = strings.Cut(p, "/")
		if name == ".." {
			return true
		}
	}
	return false
}

// relativeToBase returns physical relative to base ("." for base itself)
// if it is base or below it. The separator check keeps "/app-evil" from
// passing as inside "/app".
func relativeToBase(base, physical string) (string, bool) {
	switch {
	case physical == base:
		return ".", true
	case base == "/":
		return physical[1:], true
	case strings.HasPrefix(physical, base+"/"):
		return physical[len(base)+1:], true
	}
	return "", false
}

// realBaseDir makes dir absolute, creates it if missing (0755, less the
// umask) and resolves its own symlinks, so containment compares physical
// paths.
func realBaseDir(dir string) (string, error) {
	if dir == "" {
		dir = DefaultBaseDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("base dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("creating base dir: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolving base dir: %w", err)
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("base dir: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("base dir %s is not a directory", resolved)
	}
	return resolved, nil
}

// unquotePath undoes one round of percent-encoding the way Python's
// urllib.parse.unquote does: a valid %XX becomes its byte, anything else
// (a lone %, bad hex) stays literal, and + is not a space. The legacy
// runtime applies it to the already URL-decoded route parameter, so a
// client may encode a path once (%2F) or twice (%252F).
func unquotePath(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

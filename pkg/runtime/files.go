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
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// multipartOverhead is what a request body may carry on top of the file
// itself (boundaries, part headers, small extra fields) before we stop
// reading it.
const multipartOverhead = 1 << 20

// File modes of what uploads create; the process umask still applies.
const (
	uploadDirMode  fs.FileMode = 0o755
	uploadFileMode fs.FileMode = 0o644
)

// uploadTempPrefix names the temporary file an upload is written to
// before it is renamed over its destination, in the destination's dir.
const uploadTempPrefix = ".sandbox-upload-"

// handleUpload stores the multipart part named "file" at the path given
// by its filename, relative to the base dir, creating parent dirs.
//
// The file is written to a temporary name in the destination directory
// and renamed into place, so readers see the old or the new content,
// never a partial file, and a failed or oversized upload leaves nothing
// behind. rename(2) replaces a symlink at the destination rather than
// following it, so a link planted there after the check cannot redirect
// the write. An existing regular file keeps its permission bits.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	limit := s.maxUpload + multipartOverhead
	if r.ContentLength > limit {
		s.uploadTooLarge(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, messageBody{Message: "File upload failed: " + err.Error()})
		return
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, messageBody{Message: `File upload failed: no multipart field "file"`})
			return
		}
		if err != nil {
			s.uploadReadFailed(w, err)
			return
		}
		if part.FormName() != "file" {
			continue
		}
		name := rawFileName(part.Header.Get("Content-Disposition"))
		if name == "" {
			writeJSON(w, http.StatusBadRequest, messageBody{Message: `File upload failed: field "file" has no filename`})
			return
		}
		s.storeUpload(w, part, name)
		return
	}
}

// rawFileName returns the filename parameter of a Content-Disposition
// header verbatim. multipart.Part.FileName cannot be used: it keeps only
// the last path element, and the legacy API's filename is a relative
// path whose directories are created.
func rawFileName(contentDisposition string) string {
	_, params, err := mime.ParseMediaType(contentDisposition)
	if err != nil {
		return ""
	}
	return params["filename"]
}

func (s *Server) storeUpload(w http.ResponseWriter, content io.Reader, name string) {
	rel, err := resolveInBase(s.baseDir, name)
	if errors.Is(err, errAccessDenied) {
		writeJSON(w, http.StatusForbidden, accessDenied)
		return
	}
	if err != nil {
		s.uploadFailed(w, name, err)
		return
	}
	if rel == "." {
		s.uploadFailed(w, name, errors.New("is a directory"))
		return
	}
	root, err := os.OpenRoot(s.baseDir)
	if err != nil {
		s.uploadFailed(w, name, err)
		return
	}
	defer func() { _ = root.Close() }() // a directory handle

	dir := filepath.Dir(rel)
	if err := root.MkdirAll(dir, uploadDirMode); err != nil {
		s.uploadFailed(w, name, err)
		return
	}
	existing, err := root.Stat(rel)
	if err != nil {
		existing = nil // nothing to replace (or unreadable: rename decides)
	}
	if existing != nil && existing.IsDir() {
		s.uploadFailed(w, name, errors.New("is a directory"))
		return
	}
	tmpName := filepath.Join(dir, uploadTempPrefix+rand.Text())
	// O_EXCL: never reuse (or follow a symlink at) an existing name.
	f, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, uploadFileMode)
	if err != nil {
		s.uploadFailed(w, name, err)
		return
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = root.Remove(tmpName)
		}
	}()

	written, err := io.Copy(f, io.LimitReader(content, s.maxUpload+1))
	var maxBytes *http.MaxBytesError
	if written > s.maxUpload || errors.As(err, &maxBytes) {
		s.uploadTooLarge(w)
		return
	}
	if err != nil {
		s.uploadFailed(w, name, err)
		return
	}
	if existing != nil && existing.Mode().IsRegular() {
		if err := f.Chmod(existing.Mode().Perm()); err != nil {
			s.uploadFailed(w, name, err)
			return
		}
	}
	if err := f.Close(); err != nil {
		s.uploadFailed(w, name, err)
		return
	}
	if err := root.Rename(tmpName, rel); err != nil {
		_ = root.Remove(tmpName)
		committed = true // closed and removed already
		s.uploadFailed(w, name, err)
		return
	}
	committed = true
	s.logger.V(2).Info("Uploaded file", "path", rel, "bytes", written)
	writeJSON(w, http.StatusOK, messageBody{Message: fmt.Sprintf("File '%s' uploaded successfully.", name)})
}

func (s *Server) uploadFailed(w http.ResponseWriter, name string, err error) {
	s.logger.Error(err, "Upload failed", "filename", name)
	writeJSON(w, http.StatusInternalServerError, messageBody{Message: "File upload failed: " + err.Error()})
}

func (s *Server) uploadTooLarge(w http.ResponseWriter) {
	writeJSON(w, http.StatusRequestEntityTooLarge, messageBody{
		Message: fmt.Sprintf("File upload failed: file larger than %d bytes", s.maxUpload),
	})
}

func (s *Server) uploadReadFailed(w http.ResponseWriter, err error) {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		s.uploadTooLarge(w)
		return
	}
	writeJSON(w, http.StatusBadRequest, messageBody{Message: "File upload failed: " + err.Error()})
}

// handleDownload serves a regular file (following symlinks that stay in
// the base dir); anything else, directories included, is 404.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, clientPath string) {
	notFound := messageBody{Message: "File not found"}
	rel, err := resolveInBase(s.baseDir, clientPath)
	if errors.Is(err, errAccessDenied) {
		writeJSON(w, http.StatusForbidden, accessDenied)
		return
	}
	if err != nil {
		writeJSON(w, http.StatusNotFound, notFound)
		return
	}
	root, err := os.OpenRoot(s.baseDir)
	if err != nil {
		writeJSON(w, http.StatusNotFound, notFound)
		return
	}
	defer func() { _ = root.Close() }() // a directory handle
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer; it is refused below as not a regular file.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		writeJSON(w, http.StatusNotFound, notFound)
		return
	}
	defer func() { _ = f.Close() }() // read-only
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		writeJSON(w, http.StatusNotFound, notFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", attachmentDisposition(clientPath))
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// attachmentDisposition builds the header exactly as Starlette's
// FileResponse does: a plain quoted filename when percent-quoting (with
// "/" kept) would not change it, otherwise the RFC 5987 form. Either way
// no byte of the client's path can break out of the header.
func attachmentDisposition(filename string) string {
	quoted := pythonQuote(filename)
	if quoted == filename {
		return `attachment; filename="` + filename + `"`
	}
	return "attachment; filename*=utf-8''" + quoted
}

// pythonQuote percent-encodes like urllib.parse.quote(s, safe="/").
func pythonQuote(s string) string {
	const upperHex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// fileEntry is one element of the /list response.
type fileEntry struct {
	Name    string  `json:"name"`
	Size    int64   `json:"size"`
	Type    string  `json:"type"`
	ModTime float64 `json:"mod_time"`
}

// handleList lists a directory, sorted by name. Symlinks are reported as
// what they point to; links that leave the base dir or dangle are
// omitted, so listing never reveals anything outside the base dir.
func (s *Server) handleList(w http.ResponseWriter, _ *http.Request, clientPath string) {
	notDir := messageBody{Message: "Path is not a directory"}
	rel, err := resolveInBase(s.baseDir, clientPath)
	if errors.Is(err, errAccessDenied) {
		writeJSON(w, http.StatusForbidden, accessDenied)
		return
	}
	if err != nil {
		writeJSON(w, http.StatusNotFound, notDir)
		return
	}
	root, err := os.OpenRoot(s.baseDir)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, messageBody{Message: "List files failed: " + err.Error()})
		return
	}
	defer func() { _ = root.Close() }() // a directory handle
	dir, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		writeJSON(w, http.StatusNotFound, notDir)
		return
	}
	defer func() { _ = dir.Close() }() // read-only
	if info, err := dir.Stat(); err != nil || !info.IsDir() {
		writeJSON(w, http.StatusNotFound, notDir)
		return
	}
	dirents, err := dir.ReadDir(-1)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, messageBody{Message: "List files failed: " + err.Error()})
		return
	}
	entries := make([]fileEntry, 0, len(dirents))
	for _, d := range dirents {
		info, err := d.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := resolveInBase(s.baseDir, filepath.Join(rel, d.Name()))
			if err != nil {
				continue
			}
			if info, err = root.Stat(target); err != nil {
				continue
			}
		}
		kind := "file"
		if info.IsDir() {
			kind = "directory"
		}
		entries = append(entries, fileEntry{
			Name:    d.Name(),
			Size:    info.Size(),
			Type:    kind,
			ModTime: float64(info.ModTime().UnixNano()) / 1e9,
		})
	}
	slices.SortFunc(entries, func(a, b fileEntry) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, entries)
}

// existsBody is the /exists response.
type existsBody struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
}

// handleExists reports whether the path exists, following symlinks that
// stay in the base dir (a dangling link does not exist).
func (s *Server) handleExists(w http.ResponseWriter, _ *http.Request, clientPath string) {
	rel, err := resolveInBase(s.baseDir, clientPath)
	if errors.Is(err, errAccessDenied) {
		writeJSON(w, http.StatusForbidden, accessDenied)
		return
	}
	exists := false
	if err == nil {
		if root, err := os.OpenRoot(s.baseDir); err == nil {
			_, statErr := root.Stat(rel)
			exists = statErr == nil
			_ = root.Close()
		}
	}
	writeJSON(w, http.StatusOK, existsBody{Path: clientPath, Exists: exists})
}

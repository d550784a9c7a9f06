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

package sdk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// FileType is the kind of a directory entry.
type FileType string

// File types reported by List.
const (
	FileTypeFile      FileType = "file"
	FileTypeDirectory FileType = "directory"
)

// FileEntry is one entry of a directory listing.
type FileEntry struct {
	Name    string
	Size    int64
	Type    FileType
	ModTime time.Time // UTC
}

// Write uploads data to path, relative to the runtime's base directory
// (POST upload, multipart field "file" with the path as its filename; the
// runtime creates missing directories). It is not retried unless
// WithMaxAttempts asks for it: a retried upload after a lost response
// writes the file twice, which is harmless only if nothing else writes it.
func (s *Sandbox) Write(ctx context.Context, path string, data []byte, opts ...CallOption) (err error) {
	cc := newCallConfig(opts)
	ctx, span := s.client.startSpan(ctx, "write", s.claimName, attribute.String(AttrFilePath, path), attribute.Int(AttrFileSize, len(data)))
	defer func() { endSpan(span, err) }()
	if path == "" {
		return s.wrap(fmt.Errorf("write: %w: empty path", ErrInvalidArgument))
	}
	if limit := s.client.cfg.maxUploadSize; int64(len(data)) > limit {
		return s.wrap(fmt.Errorf("write %s: %w: %d bytes exceed the %d byte limit", path, ErrRequestTooLarge, len(data), limit))
	}
	head, tail, contentType, err := multipartFrame(path)
	if err != nil {
		return s.wrap(fmt.Errorf("write %s: %w", path, err))
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return s.wrap(err)
	}
	defer done()
	ctx, cancel := s.callContext(ctx, cc, 0)
	defer cancel()

	req := request{
		op:       "write",
		method:   http.MethodPost,
		endpoint: "upload",
		// The payload is framed, not copied: every attempt reads the
		// caller's slice again between the multipart header and trailer.
		body: func() io.Reader {
			return io.MultiReader(bytes.NewReader(head), bytes.NewReader(data), bytes.NewReader(tail))
		},
		contentLength:  int64(len(head) + len(data) + len(tail)),
		contentType:    contentType,
		attempts:       max(cc.maxAttempts, 1),
		attemptTimeout: cc.attemptTimeout,
	}
	_, err = s.do(ctx, req, func(resp *http.Response) error {
		// The body is a message nobody needs, but reading it (capped)
		// lets the connection be reused.
		_, err := readLimited(resp, maxJSONResponseSize)
		return err
	})
	if err != nil {
		return s.wrap(fmt.Errorf("write %s: %w", path, err))
	}
	return nil
}

// multipartFrame returns the bytes before and after the file content of a
// one-part multipart/form-data body, and its Content-Type.
func multipartFrame(path string) (head, tail []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if _, err := mw.CreateFormFile("file", path); err != nil {
		return nil, nil, "", err
	}
	head = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	return head, bytes.Clone(buf.Bytes()), mw.FormDataContentType(), nil
}

// Read downloads path (GET download/<path>). It is retried on transport
// errors and 5xx gateway errors. A file larger than the download cap
// (WithMaxDownloadSize, WithMaxBytes) fails with ErrResponseTooLarge.
func (s *Sandbox) Read(ctx context.Context, path string, opts ...CallOption) (_ []byte, err error) {
	cc := newCallConfig(opts)
	ctx, span := s.client.startSpan(ctx, "read", s.claimName, attribute.String(AttrFilePath, path))
	defer func() { endSpan(span, err) }()
	limit := s.client.cfg.maxDownloadSize
	if cc.maxBytes > 0 {
		limit = cc.maxBytes
	}
	var out []byte
	err = s.idempotent(ctx, "read", "download", path, cc, func(resp *http.Response) error {
		b, err := readLimited(resp, limit)
		out = b
		span.SetAttributes(attribute.Int(AttrFileSize, len(b)))
		return err
	})
	return out, err
}

// List lists the directory path (GET list/<path>). Entries that are neither
// files nor directories are dropped.
func (s *Sandbox) List(ctx context.Context, path string, opts ...CallOption) (_ []FileEntry, err error) {
	cc := newCallConfig(opts)
	ctx, span := s.client.startSpan(ctx, "list", s.claimName, attribute.String(AttrFilePath, path))
	defer func() { endSpan(span, err) }()
	var raw []struct {
		Name    string   `json:"name"`
		Size    int64    `json:"size"`
		Type    FileType `json:"type"`
		ModTime float64  `json:"mod_time"`
	}
	if err := s.idempotent(ctx, "list", "list", path, cc, func(resp *http.Response) error {
		err := decodeJSON(resp, &raw)
		span.SetAttributes(attribute.Int(AttrFileCount, len(raw)))
		return err
	}); err != nil {
		return nil, err
	}
	entries := make([]FileEntry, 0, len(raw))
	for _, e := range raw {
		if e.Type != FileTypeFile && e.Type != FileTypeDirectory {
			continue
		}
		entries = append(entries, FileEntry{Name: e.Name, Size: e.Size, Type: e.Type, ModTime: unixFloat(e.ModTime)})
	}
	return entries, nil
}

// Exists reports whether path exists (GET exists/<path>).
func (s *Sandbox) Exists(ctx context.Context, path string, opts ...CallOption) (_ bool, err error) {
	cc := newCallConfig(opts)
	ctx, span := s.client.startSpan(ctx, "exists", s.claimName, attribute.String(AttrFilePath, path))
	defer func() { endSpan(span, err) }()
	var out struct {
		Exists *bool `json:"exists"`
	}
	if err := s.idempotent(ctx, "exists", "exists", path, cc, func(resp *http.Response) error {
		if err := decodeJSON(resp, &out); err != nil {
			return err
		}
		if out.Exists == nil {
			return fmt.Errorf("%w: no \"exists\" field", ErrUnexpectedResponse)
		}
		span.SetAttributes(attribute.Bool(AttrFileExists, *out.Exists))
		return nil
	}); err != nil {
		return false, err
	}
	return *out.Exists, nil
}

// idempotent runs a GET of <endpoint>/<enc(path)> with the retry budget of
// reads (DefaultMaxAttempts unless WithMaxAttempts).
func (s *Sandbox) idempotent(ctx context.Context, op, endpoint, path string, cc callConfig, handle func(*http.Response) error) error {
	if path == "" {
		return s.wrap(fmt.Errorf("%s: %w: empty path", op, ErrInvalidArgument))
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return s.wrap(err)
	}
	defer done()
	ctx, cancel := s.callContext(ctx, cc, 0)
	defer cancel()
	attempts := DefaultMaxAttempts
	if cc.maxAttempts > 0 {
		attempts = cc.maxAttempts
	}
	req := request{
		op:             op,
		method:         http.MethodGet,
		endpoint:       endpoint + "/" + pathEscape(path),
		attempts:       attempts,
		attemptTimeout: cc.attemptTimeout,
	}
	if _, err := s.do(ctx, req, handle); err != nil {
		return s.wrap(fmt.Errorf("%s %s: %w", op, path, err))
	}
	return nil
}

// unixFloat converts the legacy runtime's float seconds to a UTC time.
func unixFloat(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}

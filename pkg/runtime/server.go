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
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Defaults, matching the legacy runtime where it had one.
const (
	// DefaultBaseDir is used when Options.BaseDir (SANDBOX_BASE_DIR) is blank.
	DefaultBaseDir = "/app"
	// DefaultExecTimeout applies when a request names no usable timeout.
	DefaultExecTimeout = 300 * time.Second
	// DefaultMaxExecTimeout caps the per-request timeout_seconds.
	DefaultMaxExecTimeout = 3600 * time.Second
	// DefaultMaxUploadBytes bounds one uploaded file.
	DefaultMaxUploadBytes int64 = 1 << 30
	// DefaultMaxOutputBytes bounds stdout and stderr, each, of a buffered
	// /execute. Two full streams plus JSON escaping must stay under the
	// SDKs' 16 MiB response limit, hence 4 MiB rather than 16.
	DefaultMaxOutputBytes = 4 << 20
)

// Environment variables read by OptionsFromEnv.
const (
	EnvBaseDir          = "SANDBOX_BASE_DIR"
	EnvExecTimeout      = "SANDBOX_EXEC_TIMEOUT_SECONDS"
	EnvMaxExecTimeout   = "SANDBOX_EXEC_MAX_TIMEOUT_SECONDS"
	EnvMaxUploadBytes   = "SANDBOX_MAX_UPLOAD_BYTES"
	EnvMaxOutputBytes   = "SANDBOX_MAX_OUTPUT_BYTES"
	maxExecRequestBytes = 16 << 20
)

// Options configures a Server. Zero values mean the defaults above.
type Options struct {
	// BaseDir confines every file operation and is the working directory
	// of every command. Created if missing.
	BaseDir string
	// DefaultTimeout is the timeout of a command whose request has no
	// finite, positive timeout_seconds.
	DefaultTimeout time.Duration
	// MaxTimeout caps a request's timeout_seconds.
	MaxTimeout time.Duration
	// MaxUploadBytes is the largest file /upload accepts (413 beyond).
	MaxUploadBytes int64
	// MaxOutputBytes caps stdout and stderr, each, of a buffered /execute;
	// the rest is dropped and a marker appended. Streaming is not capped:
	// its output is never held.
	MaxOutputBytes int
	// DrainTimeout bounds how long output is still read after a command
	// exited, for background children that keep its pipes open. Default 2s.
	DrainTimeout time.Duration
	// Logger defaults to klog.Background().
	Logger *klog.Logger
}

// OptionsFromEnv reads the SANDBOX_* environment variables through getenv
// (os.Getenv in production). Timeouts that are unparsable, non-finite or
// not positive fall back to their defaults, as the legacy runtime did.
func OptionsFromEnv(getenv func(string) string) Options {
	return Options{
		BaseDir:        strings.TrimSpace(getenv(EnvBaseDir)),
		DefaultTimeout: secondsOrDefault(getenv(EnvExecTimeout), DefaultExecTimeout),
		MaxTimeout:     secondsOrDefault(getenv(EnvMaxExecTimeout), DefaultMaxExecTimeout),
		MaxUploadBytes: positiveIntOrDefault(getenv(EnvMaxUploadBytes), DefaultMaxUploadBytes),
		MaxOutputBytes: int(positiveIntOrDefault(getenv(EnvMaxOutputBytes), DefaultMaxOutputBytes)),
	}
}

// secondsOrDefault parses a float number of seconds; non-finite, ≤ 0 or
// unparsable values yield def.
func secondsOrDefault(s string, def time.Duration) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return def
	}
	if d, ok := secondsToDuration(f); ok {
		return d
	}
	return def
}

// secondsToDuration converts finite positive seconds, saturating instead
// of overflowing time.Duration (about 292 years).
func secondsToDuration(f float64) (time.Duration, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, false
	}
	if f >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64), true
	}
	d := time.Duration(f * float64(time.Second))
	if d <= 0 { // below a nanosecond
		d = 1
	}
	return d, true
}

func positiveIntOrDefault(s string, def int64) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// Server is the runtime's http.Handler. It must be closed to kill the
// commands still running.
type Server struct {
	baseDir        string
	defaultTimeout time.Duration
	maxTimeout     time.Duration
	maxUpload      int64
	maxOutput      int
	drainTimeout   time.Duration
	logger         klog.Logger

	// ctx is cancelled by Close; every command is bound to it.
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	closed   bool
	commands sync.WaitGroup
}

// NewServer resolves (and creates if needed) the base directory and
// returns a Server serving the runtime API on it.
func NewServer(opts Options) (*Server, error) {
	base, err := realBaseDir(opts.BaseDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		baseDir:        base,
		defaultTimeout: orDefault(opts.DefaultTimeout, DefaultExecTimeout),
		maxTimeout:     orDefault(opts.MaxTimeout, DefaultMaxExecTimeout),
		maxUpload:      opts.MaxUploadBytes,
		maxOutput:      opts.MaxOutputBytes,
		drainTimeout:   orDefault(opts.DrainTimeout, 2*time.Second),
		logger:         klog.Background(),
	}
	if s.maxUpload <= 0 {
		s.maxUpload = DefaultMaxUploadBytes
	}
	if s.maxOutput <= 0 {
		s.maxOutput = DefaultMaxOutputBytes
	}
	if opts.Logger != nil {
		s.logger = *opts.Logger
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// BaseDir is the physical (symlink-resolved) base directory.
func (s *Server) BaseDir() string { return s.baseDir }

// Close SIGKILLs the process group of every running command, makes new
// commands fail, and returns once the killed commands are reaped. It does
// not stop an http.Server; call it before http.Server.Shutdown so that
// long-running /execute requests end instead of holding shutdown up.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.commands.Wait()
}

// ServeHTTP routes on the decoded URL path by hand instead of through
// http.ServeMux, because ServeMux redirects any path containing "." or
// ".." segments or "//" to its cleaned form: a client asking for
// /download/%2E%2E would get a 301 to "/" instead of the 403 the legacy
// API answers, and /list/%2Fetc would be redirected rather than served.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/":
		s.route(w, r, http.MethodGet, s.handleHealth)
	case p == "/execute":
		s.route(w, r, http.MethodPost, s.handleExecute)
	case p == "/execute/stream":
		s.route(w, r, http.MethodPost, s.handleExecuteStream)
	case p == "/upload":
		s.route(w, r, http.MethodPost, s.handleUpload)
	case strings.HasPrefix(p, "/download/"):
		s.routePath(w, r, "/download/", s.handleDownload)
	case strings.HasPrefix(p, "/list/"):
		s.routePath(w, r, "/list/", s.handleList)
	case p == "/list": // the base dir itself; FastAPI's {path:path} needed "/list/"
		s.routePath(w, r, "/list", s.handleList)
	case strings.HasPrefix(p, "/exists/"):
		s.routePath(w, r, "/exists/", s.handleExists)
	default:
		writeJSON(w, http.StatusNotFound, detailBody{Detail: "Not Found"})
	}
}

// route answers a wrong method the way FastAPI does. Like Starlette, a
// GET route also answers HEAD (net/http drops the body).
func (s *Server) route(w http.ResponseWriter, r *http.Request, method string, h http.HandlerFunc) {
	if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
		w.Header().Set("Allow", method)
		writeJSON(w, http.StatusMethodNotAllowed, detailBody{Detail: "Method Not Allowed"})
		return
	}
	h(w, r)
}

// routePath passes a GET handler the client path: the route parameter
// (already URL-decoded once by net/http) percent-decoded once more, as
// the legacy runtime does, so SDK paths like "dir%2Ffile" work whether
// the router re-encoded them or not.
func (s *Server) routePath(w http.ResponseWriter, r *http.Request, prefix string, h func(http.ResponseWriter, *http.Request, string)) {
	s.route(w, r, http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		h(w, r, unquotePath(strings.TrimPrefix(r.URL.Path, prefix)))
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthBody{Status: "ok", Message: "Sandbox Runtime is active."})
}

type healthBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// messageBody is the legacy runtime's error and upload-result shape.
type messageBody struct {
	Message string `json:"message"`
}

// detailBody is FastAPI's shape for routing and validation errors, which
// the legacy runtime produced for requests it could not even parse.
type detailBody struct {
	Detail string `json:"detail"`
}

var accessDenied = messageBody{Message: "Access denied"}

// marshalJSON encodes like Starlette's JSONResponse: compact, no trailing
// newline, and <, > and & left alone.
func marshalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own fixed types are encoded; this cannot happen.
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body := marshalJSON(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

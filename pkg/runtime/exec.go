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
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/agentsandbox/agent-sandbox/pkg/shellwords"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// outputStream names the pipe a chunk of output came from; its String is
// the NDJSON "type".
type outputStream int

const (
	stdoutStream outputStream = iota
	stderrStream
)

func (o outputStream) String() string {
	if o == stderrStream {
		return "stderr"
	}
	return "stdout"
}

// readChunkSize is the most one pipe read (and so one streamed chunk)
// returns.
const readChunkSize = 32 << 10

// Reasons a command was killed, reported after "Failed to execute
// command: ".
var (
	errShuttingDown = errors.New("the runtime is shutting down")
	errClientGone   = errors.New("the client went away")
	errEmptyCommand = errors.New("empty command")
)

// timeoutError is the cause of a run that exceeded its timeout.
type timeoutError struct {
	command string
	timeout time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("command '%s' timed out after %s seconds",
		e.command, strconv.FormatFloat(e.timeout.Seconds(), 'f', -1, 64))
}

// execTimeout picks a command's timeout: the request's when it is finite
// and positive (capped at maxTimeout), otherwise the default.
func (s *Server) execTimeout(requested *float64) time.Duration {
	if requested == nil {
		return s.defaultTimeout
	}
	d, ok := secondsToDuration(*requested)
	if !ok {
		return s.defaultTimeout
	}
	return min(d, s.maxTimeout)
}

// runCommand tokenizes command, runs it without a shell in the base dir
// as the leader of a new process group, and calls onOutput with every
// chunk read from its stdout or stderr, one call at a time, as soon as
// the read returns. It returns the exit code (−N if killed by signal N,
// as Python reports it) once the process has exited and its output is
// drained.
//
// The whole process group is SIGKILLed when the timeout expires, ctx is
// cancelled (the client went away; cancel with errClientGone as the cause
// to say so) or the server is closed; runCommand then returns the reason
// as its error. Children that leave the group (setsid) survive, as they
// would under the legacy runtime; if they keep the pipes open, output is
// read for at most DrainTimeout after the command exited.
//
// env, if not empty, is overlaid on the runtime's own environment for this
// command only (warmenv.Overlay). It is never logged.
func (s *Server) runCommand(ctx context.Context, command string, stdin []byte, env []warmenv.Var, timeout time.Duration,
	onOutput func(outputStream, []byte)) (int, error) {
	argv, err := shellwords.Split(command)
	if err != nil {
		return 0, err
	}
	if len(argv) == 0 {
		return 0, errEmptyCommand
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errShuttingDown
	}
	s.commands.Add(1)
	s.mu.Unlock()
	defer s.commands.Done()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopOnClose := context.AfterFunc(s.ctx, func() { cancel(errShuttingDown) })
	defer stopOnClose()
	timer := time.AfterFunc(timeout, func() { cancel(&timeoutError{command: command, timeout: timeout}) })
	defer timer.Stop()

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		closePipes(stdoutR, stdoutW)
		return 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.baseDir
	if len(env) > 0 {
		cmd.Env = warmenv.Overlay(os.Environ(), env)
	}
	cmd.Stdout = stdoutW
	cmd.Stderr = stderrW
	if len(stdin) > 0 {
		// exec copies it into a pipe; Wait waits for that copy, which a
		// group kill (timeout, client gone) ends like the command.
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	startErr := cmd.Start()
	// The child has its copies; ours must go or the readers never see EOF.
	closePipes(stdoutW, stderrW)
	if startErr != nil {
		closePipes(stdoutR, stderrR)
		return 0, startErr
	}
	pgid := cmd.Process.Pid
	s.logger.V(2).Info("Started command", "argv", argv, "pid", pgid, "timeout", timeout)

	// Killing the group, not just the leader, takes its children along.
	// The kill can only be decided while the leader is unreaped (Wait has
	// not returned), so the group id cannot yet belong to anyone else.
	var killMu sync.Mutex
	var killed, reaped bool
	stopKill := context.AfterFunc(runCtx, func() {
		killMu.Lock()
		defer killMu.Unlock()
		if !reaped {
			killed = true
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	})

	var emitMu sync.Mutex
	emit := func(stream outputStream, chunk []byte) {
		emitMu.Lock()
		defer emitMu.Unlock()
		onOutput(stream, chunk)
	}
	var readers sync.WaitGroup
	for stream, r := range map[outputStream]*os.File{stdoutStream: stdoutR, stderrStream: stderrR} {
		readers.Go(func() {
			defer closePipes(r)
			buf := make([]byte, readChunkSize)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					emit(stream, buf[:n])
				}
				if err != nil {
					return
				}
			}
		})
	}

	waitErr := cmd.Wait()
	killMu.Lock()
	reaped = true
	wasKilled := killed
	killMu.Unlock()
	stopKill()

	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(s.drainTimeout):
		// A background child holds the pipes open; stop reading.
		now := time.Now()
		_ = stdoutR.SetReadDeadline(now)
		_ = stderrR.SetReadDeadline(now)
		<-drained
	}

	if wasKilled {
		return 0, context.Cause(runCtx)
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return 0, waitErr
	}
	return exitCode(cmd.ProcessState), nil
}

// closePipes closes pipe ends whose close cannot fail in a way that
// matters: the writers are the child's copies (it writes, we only drop
// our descriptors) and the readers are drained or abandoned.
func closePipes(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// exitCode reports a signal death as −signal, as Python's returncode
// does, rather than Go's −1.
func exitCode(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return state.ExitCode()
}

// cappedBuffer keeps the first max bytes written to it and counts the
// rest, so a runaway command cannot exhaust the server's memory.
type cappedBuffer struct {
	max     int
	buf     []byte
	dropped int64
}

func (b *cappedBuffer) Write(p []byte) {
	room := b.max - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
		return
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
		p = p[room:]
	}
	b.dropped += int64(len(p))
}

// String returns what was kept; if output was dropped, the kept part is
// cut back to a whole UTF-8 character and a marker says how much is
// missing.
func (b *cappedBuffer) String() string {
	if b.dropped == 0 {
		return string(b.buf)
	}
	kept, partial := splitIncompleteRune(b.buf)
	return fmt.Sprintf("%s\n[output truncated: %d more bytes]", kept, b.dropped+int64(len(partial)))
}

// splitIncompleteRune splits p before a trailing UTF-8 sequence that
// has been started but not finished, so a chunk boundary never splits a
// character into two invalid halves.
func splitIncompleteRune(p []byte) (complete, partial []byte) {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				return p[:i], p[i:]
			}
			break
		}
	}
	return p, nil
}

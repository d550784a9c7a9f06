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

package serverjson

import (
	"bytes"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// Framer splits a JSON watch stream into its events as
// json.Framer does, finding each object's end by counting its brackets
// outside strings instead of running encoding/json's scanner over it
// twice (once to find the end, once more to copy it out). It yields the
// same frames for every stream of JSON objects; the first value that is
// not an object hands the rest of the stream to json.Framer. A frame is
// not validated here: its decode does that.
var Framer runtime.Framer = objectFramer{}

type objectFramer struct{}

func (objectFramer) NewFrameWriter(w io.Writer) io.Writer { return json.Framer.NewFrameWriter(w) }

func (objectFramer) NewFrameReader(r io.ReadCloser) io.ReadCloser {
	return &objectFrameReader{r: r}
}

// A frame reader's buffer starts at readSize and doubles when less than
// minRead of it is free behind what it holds (a frame larger than the
// buffer is read in several).
const (
	readSize = 32 << 10
	minRead  = 4 << 10
)

type objectFrameReader struct {
	r io.ReadCloser
	// buf[start:] is what has been read from r and not yet returned;
	// scanned, depth and inString are how far the current frame's end
	// has been looked for (relative to start) and what was open there.
	buf      []byte
	start    int
	scanned  int
	depth    int
	inString bool
	// remaining is the rest of a frame larger than the caller's buffer.
	remaining []byte
	// err is r's error, returned once the frames read before it are.
	err error
	// stock takes over the stream at its first value that is not an
	// object.
	stock io.ReadCloser
}

func (f *objectFrameReader) Close() error { return f.r.Close() }

// Read copies the next frame into data; when it does not fit, it copies
// what fits and returns io.ErrShortBuffer, and the following calls return
// the rest, as json.Framer's reader does.
func (f *objectFrameReader) Read(data []byte) (int, error) {
	if f.stock != nil {
		return f.stock.Read(data)
	}
	if len(f.remaining) > 0 {
		n := copy(data, f.remaining)
		f.remaining = f.remaining[n:]
		if len(f.remaining) > 0 {
			return n, io.ErrShortBuffer
		}
		f.remaining = nil
		return n, nil
	}
	frame, err := f.next()
	if err != nil {
		return 0, err
	}
	if frame == nil {
		return f.stock.Read(data)
	}
	n := copy(data, frame)
	if n < len(frame) {
		f.remaining = append([]byte(nil), frame[n:]...)
		return n, io.ErrShortBuffer
	}
	return n, nil
}

// next returns the next frame (valid until the following call), or nil
// once the stream has been handed to json.Framer's reader.
func (f *objectFrameReader) next() ([]byte, error) {
	for {
		if f.scanned == 0 {
			// Skip the space between frames.
			for f.start < len(f.buf) && isSpace(f.buf[f.start]) {
				f.start++
			}
			if f.start < len(f.buf) && f.buf[f.start] != '{' {
				f.handOver()
				return nil, nil
			}
		}
		if f.start < len(f.buf) {
			if end, ok := f.scan(); ok {
				frame := f.buf[f.start:end]
				f.start, f.scanned, f.depth, f.inString = end, 0, 0, false
				return frame, nil
			}
		}
		if f.err != nil {
			if f.start == len(f.buf) && f.err == io.EOF {
				return nil, io.EOF
			}
			if f.err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, f.err
		}
		f.fill()
	}
}

// scan continues the search for the end of the object at buf[start],
// returning the index after its closing bracket once it has been read.
func (f *objectFrameReader) scan() (int, bool) {
	frame := f.buf[f.start:]
	i := f.scanned
	for i < len(frame) {
		if f.inString {
			q := bytes.IndexByte(frame[i:], '"')
			if q < 0 {
				i = len(frame)
				break
			}
			i += q
			if !escaped(frame, i) {
				f.inString = false
			}
			i++
			continue
		}
		switch frame[i] {
		case '"':
			f.inString = true
		case '{', '[':
			f.depth++
		case '}', ']':
			f.depth--
			if f.depth == 0 {
				return f.start + i + 1, true
			}
		}
		i++
	}
	f.scanned = i
	return 0, false
}

// escaped reports whether the quote at s[i] is preceded by an odd number
// of backslashes.
func escaped(s []byte, i int) bool {
	n := 0
	for i > 0 && s[i-1] == '\\' {
		n++
		i--
	}
	return n%2 == 1
}

// fill reads more of the stream behind what is kept, first moving the
// unreturned bytes to the front of the buffer.
func (f *objectFrameReader) fill() {
	if f.start > 0 {
		n := copy(f.buf, f.buf[f.start:])
		f.buf, f.start = f.buf[:n], 0
	}
	if cap(f.buf)-len(f.buf) < minRead {
		grown := make([]byte, len(f.buf), max(2*cap(f.buf), readSize))
		copy(grown, f.buf)
		f.buf = grown
	}
	n, err := f.r.Read(f.buf[len(f.buf):cap(f.buf)])
	f.buf = f.buf[:len(f.buf)+n]
	if err != nil {
		f.err = err
	}
}

// handOver gives the rest of the stream, from the current value on, to
// json.Framer's reader.
func (f *objectFrameReader) handOver() {
	rest := io.MultiReader(bytes.NewReader(append([]byte(nil), f.buf[f.start:]...)), errorAfter{f.r, f.err})
	f.stock = json.Framer.NewFrameReader(readCloser{rest, f.r})
	f.buf = nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// errorAfter reads r, or returns err at once when it is set (r has
// already failed with it).
type errorAfter struct {
	r   io.Reader
	err error
}

func (e errorAfter) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return e.r.Read(p)
}

type readCloser struct {
	io.Reader
	io.Closer
}

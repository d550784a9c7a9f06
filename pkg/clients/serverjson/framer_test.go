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
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// frames reads every frame of stream through framer with a buffer of
// size bytes, joining the pieces of a frame larger than that as the
// stream decoder does, until the first error; oneByte feeds the stream a
// byte per read.
func frames(framer runtime.Framer, stream []byte, size int, oneByte bool) ([][]byte, error) {
	var r io.Reader = bytes.NewReader(stream)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	fr := framer.NewFrameReader(io.NopCloser(r))
	var out [][]byte
	var frame []byte
	buf := make([]byte, size)
	for {
		n, err := fr.Read(buf)
		frame = append(frame, buf[:n]...)
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, frame)
		frame = nil
	}
}

func TestFramerSplitsAsStock(t *testing.T) {
	sandbox := watchFrame("ADDED", asServerWrites(t, pooledSandbox()))
	for name, stream := range map[string]string{
		"watch events": string(sandbox) + string(sandbox),
		"strings with brackets, quotes and escapes": `{"a":"}{][\"\\","b":["\\\\"]}` + "\n" + `{"c":"\\\"}"}`,
		"no space between objects":                  `{"a":{}}{"b":[]}`,
		"space before and after":                    " \n\t{\"a\":1}\r\n  ",
		"empty":                                     "",
		"a value that is not an object":             `{"a":1} [1,{"b":2}] "s" 3 {"c":4}`,
		"not JSON after an object":                  `{"a":1} }{`,
		"truncated object":                          `{"a":1} {"b":[1,2`,
		"truncated string":                          `{"a":"abc`,
	} {
		for _, oneByte := range []bool{false, true} {
			for _, size := range []int{7, 1 << 16} {
				want, wantErr := frames(json.Framer, []byte(stream), size, oneByte)
				got, err := frames(Framer, []byte(stream), size, oneByte)
				if !bytes.Equal(bytes.Join(got, []byte{0}), bytes.Join(want, []byte{0})) || len(got) != len(want) {
					t.Errorf("%s (buffer %d, one byte a read %v): frames %q, stock %q", name, size, oneByte, got, want)
				}
				if (wantErr == io.EOF) != (err == io.EOF) {
					t.Errorf("%s (buffer %d, one byte a read %v): ended with %v, stock with %v", name, size, oneByte, err, wantErr)
				}
			}
		}
	}
}

// FuzzFramer holds the framer to json.Framer's frames for every stream
// json.Framer reads to its end without an error.
func FuzzFramer(f *testing.F) {
	f.Add(watchFrame("ADDED", asServerWrites(f, pooledSandbox())), uint8(0))
	f.Add([]byte(`{"a":"}{][\"\\"} {"b":[{"c":"\\\\"}]}`), uint8(3))
	f.Add([]byte(`{} [] 1 "x" {"y":null}`), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, mode uint8) {
		size, oneByte := 1+int(mode>>1), mode&1 == 1
		want, err := frames(json.Framer, stream, size, oneByte)
		if err != io.EOF {
			return
		}
		got, err := frames(Framer, stream, size, oneByte)
		if err != io.EOF {
			t.Fatalf("ended with %v after %q; json.Framer read %q to the end", err, got, want)
		}
		if len(got) != len(want) || !bytes.Equal(bytes.Join(got, []byte{0}), bytes.Join(want, []byte{0})) {
			t.Fatalf("frames %q, json.Framer's %q", got, want)
		}
	})
}

// BenchmarkFramer splits a stream of a thousand Sandbox watch events.
func BenchmarkFramer(b *testing.B) {
	stream := bytes.Repeat(watchFrame("MODIFIED", asServerWrites(b, pooledSandbox())), 1000)
	for name, framer := range map[string]runtime.Framer{"stock": json.Framer, "brackets": Framer} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 16<<10)
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				r := framer.NewFrameReader(io.NopCloser(bytes.NewReader(stream)))
				for {
					if _, err := r.Read(buf); err != nil {
						break
					}
				}
			}
		})
	}
}

// TestFramerBufferStaysSmall: a long watch of small events keeps one
// buffer of readSize, moving the unreturned tail to its front, rather
// than growing with the stream.
func TestFramerBufferStaysSmall(t *testing.T) {
	stream := bytes.Repeat(watchFrame("MODIFIED", asServerWrites(t, pooledSandbox())), 1000)
	r := Framer.NewFrameReader(io.NopCloser(bytes.NewReader(stream))).(*objectFrameReader)
	buf := make([]byte, 64<<10)
	n := 0
	for {
		if _, err := r.Read(buf); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n != 1000 || cap(r.buf) != readSize {
		t.Errorf("read %d frames with a buffer of %d bytes, want 1000 with %d", n, cap(r.buf), readSize)
	}
}

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

package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// hostileNames are file names code in a sandbox can create: each would
// act on the terminal of whoever lists the directory if printed raw.
var hostileNames = []string{
	"retitle\x1b]0;you have been pwned\x07",
	"erase\x1b[2K\rREADME.md",
	"fake\nrow   file   0",
	"c1-csi\u009b31m",
	"invalid-utf8-\xff",
	"line-separator\u2028x",
}

// TestAttackFileNamesCannotDriveTheTerminal lists a directory whose
// entries carry terminal control sequences, in every output format, and
// checks that no control byte reaches the output.
func TestAttackFileNamesCannotDriveTheTerminal(t *testing.T) {
	var entries []sdk.FileEntry
	for _, n := range hostileNames {
		entries = append(entries, sdk.FileEntry{Name: n, Type: sdk.FileType("file\x1b[8m"), Size: 1, ModTime: time.Unix(0, 0)})
	}
	entries = append(entries, sdk.FileEntry{Name: "plain.txt", Type: "file"})
	for _, format := range []string{"", outputName, outputJSON, outputYAML} {
		t.Run("format="+format, func(t *testing.T) {
			var out bytes.Buffer
			if err := printFiles(&out, format, entries); err != nil {
				t.Fatal(err)
			}
			assertNoControl(t, out.String(), true)
			lines := strings.Count(out.String(), "\n")
			if format == "" && lines != len(entries)+1 || format == outputName && lines != len(entries) {
				t.Errorf("%d lines for %d entries: a name split a row\n%s", lines, len(entries), out.String())
			}
			if format == "" || format == outputName {
				if !strings.Contains(out.String(), `"retitle\x1b]0;you have been pwned\a"`) {
					t.Errorf("the hostile name is not shown quoted:\n%s", out.String())
				}
				if !strings.Contains(out.String(), "plain.txt\n") && !strings.Contains(out.String(), "plain.txt ") {
					t.Errorf("a plain name is not shown as it is:\n%s", out.String())
				}
			}
		})
	}
}

// TestAttackRuntimeErrorCannotDriveTheTerminal: the runtime's message
// (code in the sandbox can answer anything) is printed escaped.
func TestAttackRuntimeErrorCannotDriveTheTerminal(t *testing.T) {
	msg := "no such file\x1b]0;pwned\x07\x1b[2J\nsecond line \xff"
	got := displayMessage((&sdk.ExecError{Message: msg}).Error())
	assertNoControl(t, got, false)
	if !strings.Contains(got, `\x1b]0;pwned\a\x1b[2J`) || !strings.Contains(got, "\nsecond line \\xff") {
		t.Errorf("displayMessage(%q) = %q: want escapes and the newline kept", msg, got)
	}
	if err := errors.New("plain\nmessage"); displayMessage(err.Error()) != "plain\nmessage" {
		t.Errorf("a plain message was changed: %q", displayMessage(err.Error()))
	}
}

func TestDisplayNameQuotesLookalikes(t *testing.T) {
	// A clean name that starts with a quote is quoted too, so that it
	// cannot pass for the quoted form of another name.
	if got := displayName(`"x"`); got != `"\"x\""` {
		t.Errorf("displayName of a quoted-looking name = %s", got)
	}
	if got := displayName("日本語 file.txt"); got != "日本語 file.txt" {
		t.Errorf("printable non-ASCII changed: %q", got)
	}
}

// assertNoControl fails on a C0 or C1 control character or DEL: what a
// terminal acts on.
func assertNoControl(t *testing.T, s string, newlinesOnly bool) {
	t.Helper()
	for i, r := range s {
		if r == '\n' || (r == '\t' && !newlinesOnly) {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Fatalf("control character %U at byte %d reaches the terminal:\n%q", r, i, s)
		}
	}
}

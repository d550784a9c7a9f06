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
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text that code in a sandbox chose (file names, the runtime's error
// messages) reaches the user's terminal through this plugin. Code in a
// sandbox is hostile: a file named "\x1b]0;…\a" would retitle the
// terminal, "\x1b[2K\r" would erase the line it sits on, and a newline in
// a name would print a fake row. So such text is printed escaped, never
// raw. Output that is the command's own (exec's stdout and stderr) is
// passed through unchanged, as kubectl exec does: the user asked for it.

// displayName returns s unchanged when every rune is printable and the
// string is valid UTF-8, and the Go-quoted form of s otherwise, so that
// a name with control characters is shown in full and cannot be confused
// with a clean one (a quoted name starts with '"').
func displayName(s string) string {
	if isPlainText(s, false) && !strings.HasPrefix(s, `"`) {
		return s
	}
	return strconv.Quote(s)
}

// displayMessage escapes control characters in a message (an error from
// the runtime) other than newlines, which multi-line messages keep, and
// replaces invalid UTF-8 by its escape.
func displayMessage(s string) string {
	if isPlainText(s, true) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(strconv.QuoteToASCII(s[i : i+1])[1:5]) // \xNN
		case r == '\n' || (unicode.IsPrint(r) && r != '\u2028' && r != '\u2029'):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// isPlainText reports whether s is valid UTF-8 made only of printable
// runes (and newlines, when allowed). unicode.IsPrint excludes the C0
// and C1 controls, so ESC and the 8-bit CSI (U+009B) are both caught.
func isPlainText(s string, newlines bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '\n' && newlines {
			continue
		}
		if !unicode.IsPrint(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

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

// Package shellwords splits a command line into words with POSIX shell
// quoting rules, and quotes words so they split back unchanged. The
// sandbox runtime splits the commands it runs with it (without a shell);
// clients such as kubectl-sandbox quote argv with it. It has no
// dependencies, so every client platform can build it.
package shellwords

import (
	"errors"
	"strings"
)

// Tokenizer errors. The texts are what a client sees after
// "Failed to execute command: ", so they describe the command, not us.
var (
	errUnterminatedQuote = errors.New("no closing quotation")
	errTrailingBackslash = errors.New("no escaped character")
)

// Split splits a command line into words with POSIX shell quoting
// rules and nothing else: no expansion, globbing, redirection, pipes or
// comments, because the words are passed to execve without a shell.
//
//   - blanks (space, tab, CR, LF) separate words outside quotes;
//   - '...' is literal up to the next single quote;
//   - "..." is literal except that a backslash escapes $ ` " \ and
//     removes a following newline; before any other byte it is kept;
//   - outside quotes a backslash makes the next byte literal, and
//     backslash-newline is removed (line continuation);
//   - adjacent quoted and unquoted parts form one word: a'b'c is "abc",
//     and an empty pair of quotes is an empty word.
//
// An unterminated quote or a trailing backslash is an error.
func Split(line string) ([]string, error) {
	var (
		words   []string
		word    strings.Builder
		inWord  bool // a word has started, possibly empty ('' or "")
		i       int
		n       = len(line)
		isBlank = func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	)
	for i < n {
		c := line[i]
		switch {
		case isBlank(c):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
			i++
		case c == '\\':
			if i+1 >= n {
				return nil, errTrailingBackslash
			}
			if line[i+1] != '\n' {
				word.WriteByte(line[i+1])
				inWord = true
			}
			i += 2
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errUnterminatedQuote
			}
			word.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			closed := false
			for i < n {
				d := line[i]
				if d == '"' {
					closed = true
					i++
					break
				}
				if d == '\\' && i+1 < n {
					switch e := line[i+1]; e {
					case '$', '`', '"', '\\':
						word.WriteByte(e)
						i += 2
						continue
					case '\n':
						i += 2
						continue
					}
				}
				word.WriteByte(d)
				i++
			}
			if !closed {
				return nil, errUnterminatedQuote
			}
		default:
			word.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// Quote returns word quoted so that Split (and a POSIX shell)
// reads it back as exactly one word equal to word. Words made only of
// characters no shell treats specially are returned unchanged.
func Quote(word string) string {
	if word == "" {
		return "''"
	}
	if isSafe(word) {
		return word
	}
	// Inside single quotes nothing is special except the closing quote,
	// which is spliced in as a double-quoted ' between two quoted runs.
	return "'" + strings.ReplaceAll(word, "'", `'"'"'`) + "'"
}

// Join quotes every word and joins them with spaces: the inverse of
// Split.
func Join(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = Quote(w)
	}
	return strings.Join(quoted, " ")
}

// isSafe reports whether word needs no quoting: the same set
// Python's shlex.quote leaves alone.
func isSafe(word string) bool {
	for i := 0; i < len(word); i++ {
		c := word[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("@%+=:,./_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

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

package shellwords

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSplit(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []string
		wantErr error
	}{
		"empty":                        {in: "", want: nil},
		"blanks only":                  {in: " \t\r\n ", want: nil},
		"words":                        {in: "  ls   -la\t/tmp\n", want: []string{"ls", "-la", "/tmp"}},
		"single quotes are literal":    {in: `echo '$HOME "x" \n'`, want: []string{"echo", `$HOME "x" \n`}},
		"double quotes keep blanks":    {in: `echo "a  b"`, want: []string{"echo", "a  b"}},
		"double-quote escapes":         {in: `"\$ \` + "`" + ` \" \\"`, want: []string{"$ ` \" \\"}},
		"other backslashes kept in dq": {in: `"\n\a"`, want: []string{`\n\a`}},
		"backslash-newline in dq":      {in: "\"a\\\nb\"", want: []string{"ab"}},
		"backslash outside quotes":     {in: `a\ b \'c\' \\`, want: []string{"a b", "'c'", `\`}},
		"line continuation":            {in: "a\\\nb c", want: []string{"ab", "c"}},
		"adjacent parts join":          {in: `a'b'"c"\d`, want: []string{"abcd"}},
		"empty quotes are a word":      {in: `'' "" a''`, want: []string{"", "", "a"}},
		"single quote inside double":   {in: `"it's"`, want: []string{"it's"}},
		"double quote inside single":   {in: `'say "hi"'`, want: []string{`say "hi"`}},
		"no comments, globs or vars":   {in: `# *.go $PATH ~ a|b >c`, want: []string{"#", "*.go", "$PATH", "~", "a|b", ">c"}},
		"utf-8 passes through":         {in: "écho 'ünï cödé'", want: []string{"écho", "ünï cödé"}},
		"unterminated single":          {in: `echo 'abc`, wantErr: errUnterminatedQuote},
		"unterminated double":          {in: `echo "abc`, wantErr: errUnterminatedQuote},
		"escaped closing quote":        {in: `echo "abc\"`, wantErr: errUnterminatedQuote},
		"trailing backslash":           {in: `echo \`, wantErr: errTrailingBackslash},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Split(tc.in)
			if diff := cmp.Diff(tc.wantErr, err, cmpopts.EquateErrors()); diff != "" {
				t.Fatalf("error (-want,+got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("words (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":            "''",
		"plain-1.0_x": "plain-1.0_x",
		"a b":         "'a b'",
		"it's":        `'it'"'"'s'`,
		"$HOME":       "'$HOME'",
		"a\nb":        "'a\nb'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Join([]string{"printf", "%s\n", "it's"}); got != `printf '%s`+"\n"+`' 'it'"'"'s'` {
		t.Errorf("Join = %q", got)
	}
}

// FuzzSplit: never panics, and whatever it splits survives a
// quote/split round trip unchanged.
func FuzzSplit(f *testing.F) {
	for _, seed := range []string{
		"", "echo hi", `a 'b c' "d \" e" f\ g`, `'unterminated`, `"unterminated`, `\`,
		"a\\\nb", `"\$\` + "`" + `\\\n"`, "''\"\"", "\x00\xff 'é'", `'it'"'"'s'`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := Split(line)
		if err != nil {
			return
		}
		again, err := Split(Join(words))
		if err != nil {
			t.Fatalf("Split(Join(%q)): %v", words, err)
		}
		if !slices.Equal(words, again) && (len(words) != 0 || len(again) != 0) {
			t.Fatalf("round trip of %q: %q != %q", line, again, words)
		}
	})
}

// FuzzQuote: any string, NULs and invalid UTF-8 included, comes
// back from Split(Quote(s)) as exactly one word equal to s.
func FuzzQuote(f *testing.F) {
	for _, seed := range []string{"", "a", "a b", "'", `"`, `\`, "it's", "\n", "\x00", "\xff\xfe", "$(rm -rf /)"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, word string) {
		got, err := Split(Quote(word))
		if err != nil {
			t.Fatalf("Split(Quote(%q)): %v", word, err)
		}
		if len(got) != 1 || got[0] != word {
			t.Fatalf("Split(Quote(%q)) = %q", word, got)
		}
		if quoted := Quote(word); isSafe(word) != (quoted == word) && word != "" {
			t.Fatalf("Quote(%q) = %q changed a safe word or kept an unsafe one", word, quoted)
		}
	})
}

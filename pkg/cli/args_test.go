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
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUsageErrors: every bad invocation exits 2 with a message naming the
// problem, before any client is built or anything is sent.
func TestUsageErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown verb":             {[]string{"bogus"}, `unknown command "bogus"`},
		"unknown flag":             {[]string{"ls", "--bogus"}, "unknown flag: --bogus"},
		"bad duration":             {[]string{"claim", "--pool", "p", "--ttl", "soon"}, `invalid argument "soon"`},
		"claim without pool":       {[]string{"claim"}, "--pool is required"},
		"claim two names":          {[]string{"claim", "a", "b", "--pool", "p"}, "accepts at most 1 arg(s), received 2"},
		"claim bad name":           {[]string{"claim", "Bad_Name", "--pool", "p"}, `claim name "Bad_Name"`},
		"claim bad pool":           {[]string{"claim", "--pool", "P!"}, `--pool "P!"`},
		"claim label without =":    {[]string{"claim", "--pool", "p", "--label", "team"}, `--label "team": want KEY=VALUE`},
		"claim bad label key":      {[]string{"claim", "--pool", "p", "--label", "-x=1"}, `--label "-x=1": invalid key`},
		"claim bad label value":    {[]string{"claim", "--pool", "p", "--label", "a=b c"}, `--label "a=b c": invalid value`},
		"claim negative ttl":       {[]string{"claim", "--pool", "p", "--ttl", "-1s"}, "--ttl must not be negative"},
		"claim zero timeout":       {[]string{"claim", "--pool", "p", "--timeout", "0s"}, "--timeout must be positive"},
		"claim wide output":        {[]string{"claim", "--pool", "p", "-o", "wide"}, `unknown output format "wide"`},
		"ls argument":              {[]string{"ls", "x"}, `unknown command "x" for "kubectl sandbox ls"`},
		"ls bad output":            {[]string{"ls", "-o", "table"}, `unknown output format "table"`},
		"ls bad selector":          {[]string{"ls", "-l", "a in (b"}, `--selector "a in (b"`},
		"exec without command":     {[]string{"exec", "n"}, "exec needs NAME -- COMMAND"},
		"exec without dash":        {[]string{"exec", "n", "ls"}, "exec needs NAME -- COMMAND"},
		"exec without name":        {[]string{"exec", "--", "ls"}, "exec needs NAME -- COMMAND"},
		"exec two names":           {[]string{"exec", "a", "b", "--", "ls"}, "exec needs NAME -- COMMAND"},
		"exec negative timeout":    {[]string{"exec", "n", "--timeout", "-1s", "--", "ls"}, "--timeout must not be negative"},
		"exec bad router URL":      {[]string{"exec", "n", "--router-url", "ftp://r", "--", "ls"}, `--router-url "ftp://r"`},
		"cp two local":             {[]string{"cp", "a", "b"}, "cp needs exactly one NAME:PATH argument"},
		"cp two remote":            {[]string{"cp", "x:a", "y:b"}, "cp needs exactly one NAME:PATH argument"},
		"cp empty remote path":     {[]string{"cp", "x:", "out"}, "empty sandbox path"},
		"cp one argument":          {[]string{"cp", "x:a"}, "accepts 2 arg(s), received 1"},
		"files without name":       {[]string{"files"}, "accepts between 1 and 2 arg(s), received 0"},
		"files wide output":        {[]string{"files", "n", "-o", "wide"}, `unknown output format "wide"`},
		"suspend without name":     {[]string{"suspend"}, "accepts 1 arg(s), received 0"},
		"resume two names":         {[]string{"resume", "a", "b"}, "accepts 1 arg(s), received 2"},
		"resume zero timeout":      {[]string{"resume", "a", "--timeout", "0s"}, "--timeout must be positive"},
		"release without name":     {[]string{"release"}, "requires at least 1 arg(s), only received 0"},
		"release json output":      {[]string{"release", "a", "-o", "json"}, `unknown output format "json"`},
		"suspend bad output":       {[]string{"suspend", "a", "-o", "xml"}, `unknown output format "xml"`},
		"kubectl flag needs value": {[]string{"ls", "-n"}, "flag needs an argument: 'n' in -n"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.noClients = true
			if code := f.run(tc.args...); code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, f.errOut.String())
			}
			if got := f.errOut.String(); !strings.HasPrefix(got, "error: ") || !strings.Contains(got, tc.want) {
				t.Errorf("stderr %q, want error: ...%s...", got, tc.want)
			}
			if f.out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", f.out.String())
			}
		})
	}
}

// TestParseRemote: which cp arguments name a sandbox.
func TestParseRemote(t *testing.T) {
	for arg, want := range map[string]*remotePath{
		"task:out/a.txt":    {claim: "task", path: "out/a.txt"},
		"task:/abs":         {claim: "task", path: "/abs"},
		"a.b-c:x:y":         {claim: "a.b-c", path: "x:y"},
		"./task:a":          nil,
		"/tmp/task:a":       nil,
		"Task:a":            nil,
		"file.txt":          nil,
		":a":                nil,
		"C:\\Users\\x.txt":  nil,
		"task-1:":           {claim: "task-1", path: ""},
		"-":                 nil,
		"with space:a/b.go": nil,
	} {
		got, ok := parseRemote(arg)
		var gotp *remotePath
		if ok {
			gotp = &got
		}
		if d := cmp.Diff(want, gotp, cmp.AllowUnexported(remotePath{})); d != "" {
			t.Errorf("parseRemote(%q) (-want,+got):\n%s", arg, d)
		}
	}
}

func TestExitCodeOfRemoteCommand(t *testing.T) {
	for code, want := range map[int]int{0: 0, 1: 1, 3: 3, 255: 255, -9: 137, -15: 143} {
		if got := remoteExitCode(code); got != want {
			t.Errorf("remoteExitCode(%d) = %d, want %d", code, got, want)
		}
	}
}

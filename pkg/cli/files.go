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
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// remotePath is the NAME:PATH side of cp.
type remotePath struct {
	claim, path string
}

// parseRemote recognises NAME:PATH: a colon whose left side is a valid
// claim name (so no '/', which keeps "./a:b" and "/tmp/a:b" local).
func parseRemote(arg string) (remotePath, bool) {
	name, p, ok := strings.Cut(arg, ":")
	if !ok || name == "" || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return remotePath{}, false
	}
	return remotePath{claim: name, path: p}, true
}

func newCopyCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file to or from a sandbox",
		Long: `Copy one file between this machine and the sandbox of a claim. Exactly one of
SRC and DST is NAME:PATH, PATH relative to the sandbox's base directory.

  kubectl sandbox cp LOCAL NAME:PATH   upload (missing directories are created;
                                       a PATH ending in / gets LOCAL's file name)
  kubectl sandbox cp NAME:PATH LOCAL   download (into LOCAL, or into LOCAL/<name>
                                       when LOCAL is a directory)

LOCAL "-" is standard input or output. A local path that contains a colon is
written with a "/" in front of the colon, e.g. ./a:b. Directories are not
copied recursively.

` + exitCodesHelp,
		Example: `  kubectl sandbox cp ./data.csv my-task:input/data.csv
  kubectl sandbox cp my-task:out/report.txt .
  kubectl sandbox cp my-task:out/report.txt - | less`,
		Args: argsError(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.runCopy(cmd.Context(), args[0], args[1])
		},
	}
}

func (o *Options) runCopy(ctx context.Context, src, dst string) error {
	rs, srcRemote := parseRemote(src)
	rd, dstRemote := parseRemote(dst)
	switch {
	case srcRemote == dstRemote:
		return usageError("cp needs exactly one NAME:PATH argument, got %q and %q", src, dst)
	case srcRemote && rs.path == "", dstRemote && rd.path == "":
		return usageError("cp: empty sandbox path in NAME:PATH")
	}
	if dstRemote {
		return o.upload(ctx, src, rd)
	}
	return o.download(ctx, rs, dst)
}

func (o *Options) upload(ctx context.Context, local string, r remotePath) error {
	var data []byte
	var err error
	if local == "-" {
		data, err = io.ReadAll(o.streams.In)
	} else {
		data, err = os.ReadFile(local)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", local, err)
	}
	if strings.HasSuffix(r.path, "/") {
		if local == "-" {
			return usageError("cp: uploading standard input needs a file name, not the directory %q", r.path)
		}
		r.path += filepath.Base(local)
	}
	return o.withSandbox(ctx, r.claim, func(sb *sdk.Sandbox) error {
		return sb.Write(ctx, r.path, data)
	})
}

func (o *Options) download(ctx context.Context, r remotePath, local string) error {
	return o.withSandbox(ctx, r.claim, func(sb *sdk.Sandbox) error {
		data, err := sb.Read(ctx, r.path)
		if err != nil {
			return err
		}
		if local == "-" {
			_, err = o.streams.Out.Write(data)
			return err
		}
		if fi, err := os.Stat(local); err == nil && fi.IsDir() {
			local = filepath.Join(local, path.Base(r.path))
		}
		return os.WriteFile(local, data, 0o644)
	})
}

// withSandbox attaches to the claim through the router and runs fn.
func (o *Options) withSandbox(ctx context.Context, claim string, fn func(*sdk.Sandbox) error) error {
	c, sc, closeRouter, err := o.dataPlane(ctx)
	if err != nil {
		return err
	}
	defer closeRouter()
	sb, err := sc.Attach(ctx, claim)
	if err != nil {
		return notFoundHint(err, c.namespace, claim)
	}
	defer sb.Disconnect()
	return routerHint(fn(sb))
}

func newFilesCommand(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "files NAME [PATH]",
		Short: "List a directory in a sandbox",
		Long: `List the directory PATH (default: the base directory) in the sandbox of claim
NAME: name, type, size and modification time of every entry.

` + exitCodesHelp,
		Example: `  kubectl sandbox files my-task
  kubectl sandbox files my-task out -o json`,
		Args: argsError(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, false); err != nil {
				return err
			}
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			return o.withSandbox(cmd.Context(), args[0], func(sb *sdk.Sandbox) error {
				entries, err := sb.List(cmd.Context(), dir)
				if err != nil {
					return err
				}
				return printFiles(o.streams.Out, output, entries)
			})
		},
	}
	addOutputFlag(cmd, &output, false)
	return cmd
}

// fileEntry is the JSON and YAML shape of a directory entry.
type fileEntry struct {
	Name     string    `json:"name"`
	Type     string    `json:"type"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

func printFiles(w io.Writer, format string, entries []sdk.FileEntry) error {
	switch format {
	case outputJSON, outputYAML:
		items := make([]fileEntry, 0, len(entries))
		for _, e := range entries {
			items = append(items, fileEntry{Name: e.Name, Type: string(e.Type), Size: e.Size, Modified: e.ModTime})
		}
		return printObject(w, format, struct {
			Items []fileEntry `json:"items"`
		}{items})
	case outputName:
		for _, e := range entries {
			if _, err := fmt.Fprintln(w, displayName(e.Name)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTabWriter(w)
	fmt.Fprintln(tw, "NAME\tTYPE\tSIZE\tMODIFIED")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", displayName(e.Name), displayName(string(e.Type)), strconv.FormatInt(e.Size, 10), e.ModTime.Format(time.RFC3339))
	}
	return tw.Flush()
}

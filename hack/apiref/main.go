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

// Command apiref writes docs/api-reference.md from the API types' Go
// comments and the generated CRDs. make generate runs it (through
// hack/update-codegen.sh) after the CRDs are regenerated, and make verify
// fails when the committed page differs.
package main

import (
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

func main() {
	module := flag.String("module", "", "module path; a package's import path is <module>/<dir>")
	crdDir := flag.String("crds", "manifests/crd", "directory of the generated CRDs")
	out := flag.String("out", "docs/api-reference.md", "file to write")
	k8sDocs := flag.String("k8s-docs-version", "", `Kubernetes API reference version to link to, e.g. "v1.37"`)
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: apiref -module M -k8s-docs-version vX.Y [flags] PKGDIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *module == "" || *k8sDocs == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	md, err := run(*module, *crdDir, *k8sDocs, flag.Args())
	if err == nil {
		err = os.WriteFile(*out, []byte(md), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiref:", err)
		os.Exit(1)
	}
}

// run renders the reference for the package directories, in the order
// given (the order of the page's sections).
func run(module, crdDir, k8sDocs string, dirs []string) (string, error) {
	var pkgs []*goPackage
	for _, dir := range dirs {
		p, err := loadPackage(dir, path.Join(module, filepath.ToSlash(filepath.Clean(dir))))
		if err != nil {
			return "", err
		}
		pkgs = append(pkgs, p)
	}
	crds, err := loadCRDs(crdDir)
	if err != nil {
		return "", err
	}
	return newGenerator(pkgs, crds, k8sDocs).generate()
}

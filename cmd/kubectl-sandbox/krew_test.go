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

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The krew Plugin manifest (krew.googlecontainertools.github.com/v1alpha2),
// as krew's pkg/index types define it; krew itself is not a dependency.
type krewPlugin struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              krewPluginSpec `json:"spec"`
}

type krewPluginSpec struct {
	Version          string         `json:"version"`
	ShortDescription string         `json:"shortDescription"`
	Description      string         `json:"description,omitempty"`
	Caveats          string         `json:"caveats,omitempty"`
	Homepage         string         `json:"homepage,omitempty"`
	Platforms        []krewPlatform `json:"platforms"`
}

type krewPlatform struct {
	Selector *metav1.LabelSelector `json:"selector"`
	URI      string                `json:"uri"`
	Sha256   string                `json:"sha256"`
	Files    []krewFileOperation   `json:"files"`
	Bin      string                `json:"bin"`
}

type krewFileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

var (
	krewVersion = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	hexSHA256   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// The platforms a release must cover: what kubectl users run.
	requiredPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}
)

// validateKrewManifest applies krew's own checks (strict schema, name,
// version, URIs, sha256, bin, selectors) plus ours: every release platform
// exactly once, archives named for their platform, and, with archives set,
// each archive's sha256 as the manifest states it.
func validateKrewManifest(raw []byte, archives string, platforms []string) error {
	var p krewPlugin
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		return fmt.Errorf("not a krew Plugin: %w", err)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(p.APIVersion == "krew.googlecontainertools.github.com/v1alpha2", "apiVersion %q", p.APIVersion)
	check(p.Kind == "Plugin", "kind %q", p.Kind)
	check(p.Name == "sandbox", "metadata.name %q: kubectl runs the plugin as kubectl-%s, want sandbox", p.Name, p.Name)
	check(krewVersion.MatchString(p.Spec.Version), "spec.version %q is not v-prefixed semver", p.Spec.Version)
	check(p.Spec.ShortDescription != "" && len(p.Spec.ShortDescription) <= 50, "spec.shortDescription must be 1-50 characters, got %q", p.Spec.ShortDescription)
	check(len(p.Spec.Platforms) > 0, "spec.platforms is empty")
	seen := map[string]bool{}
	for i, pl := range p.Spec.Platforms {
		where := fmt.Sprintf("spec.platforms[%d]", i)
		if pl.Selector == nil {
			errs = append(errs, fmt.Errorf("%s: no selector", where))
			continue
		}
		if _, err := metav1.LabelSelectorAsSelector(pl.Selector); err != nil {
			errs = append(errs, fmt.Errorf("%s: selector: %w", where, err))
		}
		osName, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
		key := osName + "/" + arch
		check(osName != "" && arch != "", "%s: selector must match os and arch", where)
		check(!seen[key], "%s: %s listed twice", where, key)
		seen[key] = true
		u, err := url.Parse(pl.URI)
		check(err == nil && u.Scheme == "https" && u.Host != "", "%s: uri %q must be https", where, pl.URI)
		check(strings.HasSuffix(pl.URI, "/"+p.Spec.Version+"/kubectl-sandbox_"+osName+"_"+arch+".tar.gz"),
			"%s: uri %q is not the %s archive of %s", where, pl.URI, key, p.Spec.Version)
		check(hexSHA256.MatchString(pl.Sha256), "%s: sha256 %q is not 64 lower-case hex digits", where, pl.Sha256)
		wantBin := "kubectl-sandbox"
		if osName == "windows" {
			wantBin += ".exe"
		}
		check(pl.Bin == wantBin, "%s: bin %q, want %q", where, pl.Bin, wantBin)
		check(len(pl.Files) == 1 && pl.Files[0].From == wantBin && pl.Files[0].To == ".", "%s: files must copy %s to .", where, wantBin)
		if archives != "" && err == nil {
			b, rerr := os.ReadFile(filepath.Join(archives, path.Base(u.Path)))
			if rerr != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, rerr))
			} else {
				sum := sha256.Sum256(b)
				check(hex.EncodeToString(sum[:]) == pl.Sha256, "%s: sha256 %s does not match %s (%s)", where, pl.Sha256, path.Base(u.Path), hex.EncodeToString(sum[:]))
			}
		}
	}
	for _, want := range platforms {
		check(seen[want], "no platform %s", want)
	}
	return errors.Join(errs...)
}

// TestReleasedKrewManifest validates the manifest hack/release-plugin.sh
// just wrote, against the archives it built; the script sets the two
// variables. Outside a release there is nothing to validate.
func TestReleasedKrewManifest(t *testing.T) {
	manifest, archives := os.Getenv("KREW_MANIFEST"), os.Getenv("KREW_ARCHIVES")
	if manifest == "" {
		t.Skip("KREW_MANIFEST unset: run by hack/release-plugin.sh")
	}
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	platforms := requiredPlatforms
	if p := os.Getenv("PLUGIN_PLATFORMS"); p != "" {
		platforms = strings.Fields(p)
	}
	if err := validateKrewManifest(raw, archives, platforms); err != nil {
		t.Errorf("%s:\n%v", manifest, err)
	}
}

// TestKrewManifestValidation: a well-formed manifest passes, and each kind
// of mistake is caught.
func TestKrewManifestValidation(t *testing.T) {
	dir := t.TempDir()
	sums := map[string]string{}
	for _, p := range requiredPlatforms {
		name := "kubectl-sandbox_" + strings.ReplaceAll(p, "/", "_") + ".tar.gz"
		content := []byte("archive of " + p)
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		sums[p] = hex.EncodeToString(sum[:])
	}
	render := func(edit func(*krewPlugin)) []byte {
		p := krewPlugin{
			TypeMeta:   metav1.TypeMeta{APIVersion: "krew.googlecontainertools.github.com/v1alpha2", Kind: "Plugin"},
			ObjectMeta: metav1.ObjectMeta{Name: "sandbox"},
			Spec:       krewPluginSpec{Version: "v0.1.0", ShortDescription: "Claim agent sandboxes"},
		}
		for _, pl := range requiredPlatforms {
			osName, arch, _ := strings.Cut(pl, "/")
			bin := "kubectl-sandbox"
			if osName == "windows" {
				bin += ".exe"
			}
			p.Spec.Platforms = append(p.Spec.Platforms, krewPlatform{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": osName, "arch": arch}},
				URI:      "https://github.com/agentsandbox/agent-sandbox/releases/download/v0.1.0/kubectl-sandbox_" + osName + "_" + arch + ".tar.gz",
				Sha256:   sums[pl], Bin: bin, Files: []krewFileOperation{{From: bin, To: "."}},
			})
		}
		if edit != nil {
			edit(&p)
		}
		b, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := validateKrewManifest(render(nil), dir, requiredPlatforms); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*krewPlugin)
		raw  []byte
		want string
	}{
		"unknown field":     {raw: []byte("apiVersion: krew.googlecontainertools.github.com/v1alpha2\nkind: Plugin\nmetadata: {name: sandbox}\nspec: {version: v0.1.0, bogus: 1}\n"), want: "not a krew Plugin"},
		"wrong kind":        {edit: func(p *krewPlugin) { p.Kind = "Plugins" }, want: `kind "Plugins"`},
		"wrong name":        {edit: func(p *krewPlugin) { p.Name = "kubectl-sandbox" }, want: "metadata.name"},
		"version without v": {edit: func(p *krewPlugin) { p.Spec.Version = "0.1.0" }, want: "spec.version"},
		"no selector":       {edit: func(p *krewPlugin) { p.Spec.Platforms[0].Selector = nil }, want: "spec.platforms[0]: no selector"},
		"missing platform":  {edit: func(p *krewPlugin) { p.Spec.Platforms = p.Spec.Platforms[1:] }, want: "no platform linux/amd64"},
		"duplicate":         {edit: func(p *krewPlugin) { p.Spec.Platforms[1] = p.Spec.Platforms[0] }, want: "linux/amd64 listed twice"},
		"http uri": {edit: func(p *krewPlugin) {
			p.Spec.Platforms[0].URI = strings.Replace(p.Spec.Platforms[0].URI, "https", "http", 1)
		}, want: "must be https"},
		"bad sha256":      {edit: func(p *krewPlugin) { p.Spec.Platforms[0].Sha256 = strings.ToUpper(p.Spec.Platforms[0].Sha256) }, want: "64 lower-case hex"},
		"stale sha256":    {edit: func(p *krewPlugin) { p.Spec.Platforms[0].Sha256 = sums["linux/arm64"] }, want: "does not match kubectl-sandbox_linux_amd64.tar.gz"},
		"windows bin":     {edit: func(p *krewPlugin) { p.Spec.Platforms[4].Bin = "kubectl-sandbox" }, want: `bin "kubectl-sandbox", want "kubectl-sandbox.exe"`},
		"swapped archive": {edit: func(p *krewPlugin) { p.Spec.Platforms[0].URI = p.Spec.Platforms[1].URI }, want: "is not the linux/amd64 archive"},
	} {
		t.Run(name, func(t *testing.T) {
			raw := tc.raw
			if raw == nil {
				raw = render(tc.edit)
			}
			err := validateKrewManifest(raw, dir, requiredPlatforms)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q in it", err, tc.want)
			}
		})
	}
}

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
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The local cluster runs some released components (the router) as local
// processes, since nothing runs images here. These read the component's
// rendered release manifest (kubectl kustomize manifests/router, what
// make release-manifests renders), so the process gets exactly the RBAC
// objects and the flags a release deploys: the two cannot drift apart.

// manifestDocs splits a YAML stream into its non-empty documents.
func manifestDocs(manifest []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, err
		}
		// A document of comments only decodes to nothing.
		if obj.Kind != "" {
			docs = append(docs, doc)
		}
	}
}

// manifestObjects returns, as a YAML stream, the documents of the manifest
// whose kind is one of kinds, unchanged.
func manifestObjects(manifest []byte, kinds []string) ([]byte, error) {
	docs, err := manifestDocs(manifest)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, doc := range docs {
		var obj metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, err
		}
		if slices.Contains(kinds, obj.Kind) {
			out.WriteString("---\n")
			out.Write(bytes.TrimSpace(doc))
			out.WriteString("\n")
		}
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("the manifest has no object of kind %v", kinds)
	}
	return out.Bytes(), nil
}

// containerArgs returns the args of one container of the manifest's
// Deployment.
func containerArgs(manifest []byte, deployment, container string) ([]string, error) {
	docs, err := manifestDocs(manifest)
	if err != nil {
		return nil, err
	}
	for _, doc := range docs {
		var d appsv1.Deployment
		if err := yaml.Unmarshal(doc, &d); err != nil {
			return nil, err
		}
		if d.Kind != "Deployment" || d.Name != deployment {
			continue
		}
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			if c.Name == container {
				if len(c.Command) > 0 {
					// The args would then be the command's, not the
					// image entrypoint's: nothing the caller can run.
					return nil, fmt.Errorf("container %s of Deployment %s sets a command", container, deployment)
				}
				return c.Args, nil
			}
		}
		return nil, fmt.Errorf("no container %s in Deployment %s", container, deployment)
	}
	return nil, fmt.Errorf("the manifest has no Deployment %s", deployment)
}

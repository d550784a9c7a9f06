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

package controller

import (
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of the MetadataInterner. A full table starts afresh (the cached
// objects keep the copies they share), so a tenant who writes endless
// distinct labels costs at most these tables, and interning goes on
// working afterwards. Long strings are rarely repeated (messages with
// names in them) and are never interned.
const (
	maxInternedStrings   = 8192
	maxInternedStringLen = 128
	maxInternedMaps      = 2048
	maxInternedOwnerRefs = 1024
	maxInternedPodConds  = 1024
)

// MetadataInterner makes cached objects share the decoded copies of what
// many of them carry unchanged: label and annotation keys and values,
// whole label and annotation maps (every member of a warm pool has the
// same ones), owner references (the same pool owns them all), Pod
// condition lists, namespaces, node names and condition strings. A decoder allocates each of those
// afresh for every object and every watch event; with 3000 pool members
// they were ~40 % of what a cached Sandbox and its Pod cost.
//
// Sharing is safe for the reason PodTemplateInterner's is: objects in an
// informer's cache are read-only, and every write starts from a DeepCopy,
// which copies maps and slices. Whether two maps or reference lists are
// shared is decided by comparing their whole content, never by a hash or
// a label alone.
type MetadataInterner struct {
	mu        sync.Mutex
	seed      maphash.Seed
	strs      map[string]string
	stringMap map[uint64]map[string]string
	ownerRefs map[uint64][]metav1.OwnerReference
	podConds  map[uint64][]corev1.PodCondition
}

// NewMetadataInterner returns an empty interner.
func NewMetadataInterner() *MetadataInterner {
	return &MetadataInterner{
		seed:      maphash.MakeSeed(),
		strs:      map[string]string{},
		stringMap: map[uint64]map[string]string{},
		ownerRefs: map[uint64][]metav1.OwnerReference{},
		podConds:  map[uint64][]corev1.PodCondition{},
	}
}

// InternObjectMeta interns m's namespace, generateName, labels,
// annotations and owner references in place. m must belong to a freshly
// decoded object that is not in a cache yet.
func (i *MetadataInterner) InternObjectMeta(m *metav1.ObjectMeta) {
	i.mu.Lock()
	defer i.mu.Unlock()
	m.Namespace = i.str(m.Namespace)
	m.GenerateName = i.str(m.GenerateName)
	m.Labels = i.stringMapLocked(m.Labels)
	m.Annotations = i.stringMapLocked(m.Annotations)
	m.OwnerReferences = i.ownerRefsLocked(m.OwnerReferences)
}

// Strings interns each of ss in place.
func (i *MetadataInterner) Strings(ss ...*string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, s := range ss {
		*s = i.str(*s)
	}
}

// str returns the shared copy of s. Callers hold mu.
func (i *MetadataInterner) str(s string) string {
	if s == "" || len(s) > maxInternedStringLen {
		return s
	}
	if shared, ok := i.strs[s]; ok {
		return shared
	}
	if len(i.strs) >= maxInternedStrings {
		clear(i.strs)
	}
	// A copy of its own: s may point into a larger decoded buffer.
	s = strings.Clone(s)
	i.strs[s] = s
	return s
}

// stringMapLocked returns a shared map equal to m, or m with its keys and
// values interned when no such map is known yet (m is then the one later
// equal maps share). Callers hold mu.
func (i *MetadataInterner) stringMapLocked(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	// An order-independent hash of the entries: the sum of each entry's.
	var sum uint64
	var h maphash.Hash
	h.SetSeed(i.seed)
	for k, v := range m {
		h.Reset()
		hashFields(&h, k, v)
		sum += h.Sum64()
	}
	if shared, ok := i.stringMap[sum]; ok && maps.Equal(shared, m) {
		return shared
	}
	interned := make(map[string]string, len(m))
	for k, v := range m {
		interned[i.str(k)] = i.str(v)
	}
	if len(i.stringMap) >= maxInternedMaps {
		clear(i.stringMap)
	}
	// A colliding different map takes the slot: the table is a cache.
	i.stringMap[sum] = interned
	return interned
}

// ownerRefsLocked returns a shared list equal to refs, or refs with its
// strings interned. Callers hold mu.
func (i *MetadataInterner) ownerRefsLocked(refs []metav1.OwnerReference) []metav1.OwnerReference {
	return internList(i, i.ownerRefs, maxInternedOwnerRefs, refs,
		func(h *maphash.Hash, r metav1.OwnerReference) {
			hashFields(h, r.APIVersion, r.Kind, r.Name, string(r.UID))
		},
		ownerRefEqual,
		func(r *metav1.OwnerReference) { r.APIVersion, r.Kind = i.str(r.APIVersion), i.str(r.Kind) })
}

// PodConditions returns a shared list equal to cs, or cs with its strings
// interned. The cache keeps Pod conditions without their times
// (StripForCache), so every running Pod's list is the same.
func (i *MetadataInterner) PodConditions(cs []corev1.PodCondition) []corev1.PodCondition {
	i.mu.Lock()
	defer i.mu.Unlock()
	// PodCondition is comparable: the equality covers every field, times
	// included.
	return internList(i, i.podConds, maxInternedPodConds, cs,
		func(h *maphash.Hash, c corev1.PodCondition) {
			hashFields(h, string(c.Type), string(c.Status), c.Reason, c.Message)
		},
		func(a, b corev1.PodCondition) bool { return a == b },
		func(c *corev1.PodCondition) {
			c.Type, c.Status = corev1.PodConditionType(i.str(string(c.Type))), corev1.ConditionStatus(i.str(string(c.Status)))
			c.Reason, c.Message = i.str(c.Reason), i.str(c.Message)
		})
}

// hashFields writes each field and a separator.
func hashFields(h *maphash.Hash, fields ...string) {
	for _, f := range fields {
		h.WriteString(f)
		h.WriteByte(0)
	}
}

// internList returns the list in table equal to list (found by the hash of
// each element's fields, decided by eq on every element), or list itself,
// its elements' strings interned by internStrings, which later equal lists
// then share. A full table starts afresh. Callers hold i.mu.
func internList[T any](i *MetadataInterner, table map[uint64][]T, limit int, list []T,
	hash func(*maphash.Hash, T), eq func(a, b T) bool, internStrings func(*T)) []T {
	if len(list) == 0 {
		return list
	}
	var h maphash.Hash
	h.SetSeed(i.seed)
	for _, e := range list {
		hash(&h, e)
	}
	sum := h.Sum64()
	if shared, ok := table[sum]; ok && slices.EqualFunc(shared, list, eq) {
		return shared
	}
	for j := range list {
		internStrings(&list[j])
	}
	if len(table) >= limit {
		clear(table)
	}
	table[sum] = slices.Clip(list)
	return table[sum]
}

func ownerRefEqual(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		boolPtrEqual(a.Controller, b.Controller) && boolPtrEqual(a.BlockOwnerDeletion, b.BlockOwnerDeletion)
}

func boolPtrEqual(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

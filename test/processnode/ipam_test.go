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

package processnode

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestIPAMAllocatesRoundRobinInsideTheCIDR(t *testing.T) {
	a, err := newIPAM("127.100.0.0/29") // usable: .1 to .6
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, uid := range []types.UID{"a", "b", "c"} {
		ip, err := a.allocate(uid)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if want := []string{"127.100.0.1", "127.100.0.2", "127.100.0.3"}; !slices.Equal(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	if ip, _ := a.allocate("b"); ip.String() != "127.100.0.2" {
		t.Errorf("a second allocate for b gave %s, want its own 127.100.0.2", ip)
	}
	// A freed address is not given out again before the others.
	a.release("a")
	for _, want := range []string{"127.100.0.4", "127.100.0.5", "127.100.0.6", "127.100.0.1"} {
		uid := types.UID("after-" + want)
		ip, err := a.allocate(uid)
		if err != nil {
			t.Fatal(err)
		}
		if ip.String() != want {
			t.Fatalf("allocated %s, want %s (round robin, no network or broadcast address)", ip, want)
		}
	}
	if ip, err := a.allocate("one-too-many"); err == nil {
		t.Fatalf("allocated %s from an exhausted CIDR", ip)
	}
	if a.inUse() != 6 {
		t.Errorf("in use %d, want 6", a.inUse())
	}
}

func TestIPAMReserveAfterRestart(t *testing.T) {
	a, err := newIPAM("127.100.16.0/20")
	if err != nil {
		t.Fatal(err)
	}
	// Steps, in order: each depends on what the earlier ones reserved.
	for _, step := range []struct {
		name    string
		uid     types.UID
		ip      string
		wantErr bool
	}{
		{name: "inside", uid: "a", ip: "127.100.16.7"},
		{name: "same again", uid: "a", ip: "127.100.16.7"},
		{name: "taken", uid: "b", ip: "127.100.16.7", wantErr: true},
		{name: "second for a", uid: "a", ip: "127.100.16.8", wantErr: true},
		{name: "network address", uid: "c", ip: "127.100.16.0", wantErr: true},
		{name: "broadcast", uid: "c", ip: "127.100.31.255", wantErr: true},
		{name: "outside", uid: "c", ip: "127.100.32.1", wantErr: true},
	} {
		err := a.reserve(step.uid, netip.MustParseAddr(step.ip))
		if (err != nil) != step.wantErr {
			t.Fatalf("%s: reserve(%s, %s) = %v, want error %v", step.name, step.uid, step.ip, err, step.wantErr)
		}
	}
	// A reserved address is skipped by allocation.
	for i := range 10 {
		ip, err := a.allocate(types.UID(fmt.Sprint("new-", i)))
		if err != nil {
			t.Fatal(err)
		}
		if ip.String() == "127.100.16.7" {
			t.Fatal("allocated the reserved address")
		}
	}
}

func TestIPAMRefusesCIDRsOutsideLoopback(t *testing.T) {
	for _, cidr := range []string{"192.0.2.0/24", "::1/128", "127.0.0.0/7", "127.1.2.3/31", "not a cidr"} {
		if _, err := newIPAM(cidr); err == nil {
			t.Errorf("newIPAM(%q) succeeded", cidr)
		}
	}
}

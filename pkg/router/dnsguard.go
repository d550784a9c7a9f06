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

package router

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
)

// guardDial is the upstream dialer's ControlContext: it sees the address
// really being connected, after DNS. Every dial passes dialGuard's class
// check. A dial for the DNS fallback must in addition connect to an
// address that the requested Sandbox's status.podIPs lists: the name
// <id>.<namespace>.svc is whatever the cluster DNS says, and anyone who may
// create a Service in that namespace decides that (an ExternalName is a
// CNAME to any name, another tenant's sandbox or Service included). So the
// fallback never reaches more than the Sandbox the caller was authorized
// for, in every authorization mode.
//
// The dial context carries the request's values (net/http detaches only
// its cancellation), and a connection dialled for a fallback name is only
// pooled under that name, which encodes namespace and ID.
func (r *Router) guardDial(ctx context.Context, network, address string, c syscall.RawConn) error {
	if err := dialGuard(r.opts.AllowLoopbackPodIP)(network, address, c); err != nil {
		return err
	}
	st := stateFrom(ctx)
	if st == nil || st.source != sourceDNS {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !r.cache.SandboxHasIP(st.target.Namespace, st.target.ID, ap.Addr()) {
		return fmt.Errorf("%w: %s is not a pod IP of sandbox %s/%s", errForbiddenAddress, address, st.target.Namespace, st.target.ID)
	}
	return nil
}

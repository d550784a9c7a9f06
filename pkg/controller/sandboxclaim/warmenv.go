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

package sandboxclaim

import (
	"errors"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// coldMessages explain each WarmStart=False reason, in the condition and
// the ColdStart Event. Constant: never a variable's name or value.
var coldMessages = map[string]string{
	extv1beta1.ColdReasonWarmEnvNotEnabled:        "The claim sets env and its template does not opt in to warm env (annotation " + extv1beta1.WarmEnvPortAnnotation + "); a new Pod was started.",
	extv1beta1.ColdReasonEnvTargetsOtherContainer: "A claim variable targets a container other than the first one; a new Pod was started.",
	extv1beta1.ColdReasonEnvTooLarge:              "The claim's env is over 8 KiB as JSON; a new Pod was started.",
	extv1beta1.ColdReasonVolumesNeedColdStart:     "The claim sets volumeClaimTemplates, which warm pool members lack; a new Pod was started.",
	extv1beta1.ColdReasonNoReadyMember:            "The warm pool had no ready member to take; a new Pod was started.",
}

// warmEnv decides whether claim may take a warm member of a pool running
// tmpl. cold is the reason it may not ("" when it may); annotation is the
// value of the Sandbox's env annotation the takeover must write ("" for a
// claim without env). The env is validated exactly as the cold path
// validates it (injectEnv, on a copy of the template's pod spec), so a
// policy refusal is the same error either way and is not a cold start.
// Pure: trustedBinding recomputes it to recognise a binding.
func warmEnv(claim *extv1beta1.SandboxClaim, tmpl *extv1beta1.SandboxTemplate) (annotation, cold string, err error) {
	if len(claim.Spec.VolumeClaimTemplates) > 0 {
		return "", extv1beta1.ColdReasonVolumesNeedColdStart, nil
	}
	if len(claim.Spec.Env) == 0 {
		return "", "", nil
	}
	spec := tmpl.Spec.PodTemplate.Spec.DeepCopy()
	if err := injectEnv(tmpl, claim, spec); err != nil {
		return "", "", err
	}
	port, perr := strconv.ParseInt(tmpl.Annotations[extv1beta1.WarmEnvPortAnnotation], 10, 32)
	if perr != nil || port < 1 || port > 65535 {
		return "", extv1beta1.ColdReasonWarmEnvNotEnabled, nil
	}
	// injectEnv succeeded, so untargeted variables found a first container.
	names := map[string]bool{}
	for _, v := range claim.Spec.Env {
		if v.ContainerName != "" && (len(spec.Containers) == 0 || v.ContainerName != spec.Containers[0].Name) {
			return "", extv1beta1.ColdReasonEnvTargetsOtherContainer, nil
		}
		names[v.Name] = true
	}
	// What the policy made of the first container's env, restricted to
	// the claim's names: the runtime overlays it on its own environment,
	// which already holds the template's variables.
	var env []warmenv.Var
	for _, e := range spec.Containers[0].Env {
		if names[e.Name] {
			env = append(env, warmenv.Var{Name: e.Name, Value: e.Value})
		}
	}
	annotation, err = warmenv.Marshal(warmenv.Spec{Port: int32(port), Env: env})
	switch {
	case errors.Is(err, warmenv.ErrTooLarge):
		return "", extv1beta1.ColdReasonEnvTooLarge, nil
	case err != nil:
		// A name or value no process can receive; the cold path's Pod
		// would be refused as well.
		return "", "", claimErrorf(extv1beta1.ClaimReasonEnvVarsRejected, "%v", err)
	}
	return annotation, "", nil
}

// envMatches reports whether sb carries exactly the env annotation claim
// would give it: none for a claim without env.
func envMatches(claim *extv1beta1.SandboxClaim, tmpl *extv1beta1.SandboxTemplate, sb *agentsv1beta1.Sandbox) bool {
	want, cold, err := warmEnv(claim, tmpl)
	if err != nil || cold != "" {
		return false
	}
	have, ok := sb.Annotations[agentsv1beta1.EnvAnnotation]
	if want == "" {
		return !ok
	}
	return have == want
}

// setWarmStart records once, in the first status that names a Sandbox,
// whether the claim got a warm member and otherwise why not. The reason
// is recomputed from the claim and its template (as at binding time,
// unless the template changed in between); a cold claim that could have
// been warm found no member. base is the status the pass started from
// (StatusWriter.Base).
func (c *Controller) setWarmStart(base *extv1beta1.SandboxClaimStatus, sb *agentsv1beta1.Sandbox, claim *extv1beta1.SandboxClaim, status *extv1beta1.SandboxClaimStatus) {
	// Only while the claim's status names no Sandbox yet: a claim bound
	// before this condition existed does not get a status write for it.
	if sb == nil || base.SandboxStatus.Name != "" || meta.FindStatusCondition(status.Conditions, extv1beta1.ClaimConditionWarmStart) != nil {
		return
	}
	cond := metav1.Condition{
		Type: extv1beta1.ClaimConditionWarmStart, ObservedGeneration: claim.Generation, LastTransitionTime: metav1.NewTime(c.opts.Clock.Now()),
	}
	if sb.Labels[agentsv1beta1.LaunchTypeLabel] == agentsv1beta1.LaunchTypeWarm {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, extv1beta1.WarmStartReasonWarmPoolMember, "The claim got a member of its warm pool."
	} else {
		_, tmpl, err := c.poolAndTemplate(claim)
		if err != nil {
			return // said on a later status write, once the template is back
		}
		_, reason, err := warmEnv(claim, tmpl)
		if err != nil {
			return
		}
		if reason == "" {
			reason = extv1beta1.ColdReasonNoReadyMember
		}
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, reason, coldMessages[reason]
	}
	meta.SetStatusCondition(&status.Conditions, cond)
}

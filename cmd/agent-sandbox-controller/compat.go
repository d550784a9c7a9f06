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
	"flag"
	"strconv"

	"k8s.io/klog/v2"
)

// compatibilityFlags are reference flags this binary accepts so that a
// Deployment written for the reference starts unchanged, but that have no
// effect here; each one used is named in a start-up log line.
type compatibilityFlags struct {
	// We never write the observability annotations (the values live in
	// memory), so there is nothing to disable.
	disableClaimObservabilityAnnotations bool
	// The reference logs through zap; we log through klog. --zap-log-level
	// debug (or a number N) raises klog's -v when -v is not given.
	zapDevel                                                     bool
	zapEncoder, zapLogLevel, zapStacktraceLevel, zapTimeEncoding string
}

func registerCompatibilityFlags(c *compatibilityFlags) {
	flag.BoolVar(&c.disableClaimObservabilityAnnotations, "disable-claim-observability-annotations", false,
		"Accepted for compatibility; this controller never writes those annotations.")
	flag.BoolVar(&c.zapDevel, "zap-devel", false, "Accepted for compatibility; logging is klog's (see -v).")
	flag.StringVar(&c.zapEncoder, "zap-encoder", "", "Accepted for compatibility; logging is klog's.")
	flag.StringVar(&c.zapLogLevel, "zap-log-level", "", "Compatibility: debug, or a number N, sets klog's -v to 1 or N unless -v is given.")
	flag.StringVar(&c.zapStacktraceLevel, "zap-stacktrace-level", "", "Accepted for compatibility; logging is klog's.")
	flag.StringVar(&c.zapTimeEncoding, "zap-time-encoding", "", "Accepted for compatibility; logging is klog's.")
}

// applyCompatibilityFlags maps what can be mapped (zap level to klog -v,
// called before the first log line) and returns a function that logs what
// was accepted but ignored.
func applyCompatibilityFlags(c compatibilityFlags) func(klog.Logger) {
	vSet := false
	flag.Visit(func(f *flag.Flag) { vSet = vSet || f.Name == "v" })
	if !vSet && c.zapLogLevel != "" {
		level := ""
		if c.zapLogLevel == "debug" {
			level = "1"
		} else if n, err := strconv.Atoi(c.zapLogLevel); err == nil && n > 0 {
			level = strconv.Itoa(n)
		}
		if level != "" {
			_ = flag.Set("v", level)
		}
	}
	return func(logger klog.Logger) {
		if c.disableClaimObservabilityAnnotations {
			logger.Info("--disable-claim-observability-annotations has no effect: this controller never writes them")
		}
		if c.zapDevel {
			logger.Info("Flag accepted for compatibility and ignored: logging is klog's", "flag", "--zap-devel")
		}
		for name, v := range map[string]string{"zap-encoder": c.zapEncoder,
			"zap-stacktrace-level": c.zapStacktraceLevel, "zap-time-encoding": c.zapTimeEncoding} {
			if v != "" {
				logger.Info("Flag accepted for compatibility and ignored: logging is klog's", "flag", "--"+name)
			}
		}
	}
}

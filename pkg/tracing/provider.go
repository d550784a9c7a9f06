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

package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Protocol is the only OTLP transport this build carries. OTLP over HTTP
// with protobuf bodies needs net/http and protobuf, which every binary
// here links already; either official exporter (gRPC, or HTTP through the
// collector package it shares with gRPC) would add grpc-go and grow the
// controller by about 87 % (docs/performance.md, "Tracing cost").
const Protocol = "http/protobuf"

// DefaultInitTimeout bounds New when Config.InitTimeout is zero.
const DefaultInitTimeout = 10 * time.Second

// Config configures New. Everything else comes from the standard
// environment: OTEL_EXPORTER_OTLP_{,TRACES_}{ENDPOINT,HEADERS,TIMEOUT,
// COMPRESSION,CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY,PROTOCOL},
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER{,_ARG}
// and OTEL_BSP_* (the batch processor's).
type Config struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME (or
	// service.name in OTEL_RESOURCE_ATTRIBUTES) sets it.
	ServiceName string
	// InitTimeout bounds the set-up; zero means DefaultInitTimeout.
	InitTimeout time.Duration
	// ErrorHandler, when not nil, receives the SDK's errors (a failed
	// export) instead of the standard library's log; it is process-wide.
	ErrorHandler func(error)
}

// Provider is a configured TracerProvider. Shutdown flushes the spans
// still queued; call it before the process exits.
type Provider struct {
	sdk      *sdktrace.TracerProvider
	endpoint string
}

// TracerProvider returns the provider spans are started from.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.sdk }

// Tracer returns the named tracer of the provider.
func (p *Provider) Tracer(name string) trace.Tracer { return p.sdk.Tracer(name) }

// ForceFlush exports the spans ended so far.
func (p *Provider) ForceFlush(ctx context.Context) error { return p.sdk.ForceFlush(ctx) }

// Shutdown exports the spans still queued and stops the exporter; ctx
// bounds how long that may take.
func (p *Provider) Shutdown(ctx context.Context) error { return p.sdk.Shutdown(ctx) }

// settings is what New reads from the environment itself, rather than
// leaving it to the SDK: the SDK ignores a value it does not understand
// (it reports it to the global error handler and goes on), and a
// misspelt protocol or sampler would then lose spans without a word.
type settings struct {
	sampler sdktrace.Sampler // nil: the SDK default, parentbased_always_on
}

// readSettings validates the OTEL_* variables that decide whether spans
// can be exported at all.
func readSettings() (settings, error) {
	var s settings
	if v := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); v != "" && v != "otlp" {
		return s, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only \"otlp\" is supported (unset --enable-tracing to turn tracing off)", v)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			continue
		}
		if v != Protocol {
			return s, fmt.Errorf("%s=%q: this build exports OTLP over %s only; point the endpoint at the collector's OTLP/HTTP port (usually 4318) and set %s=%s", name, v, Protocol, name, Protocol)
		}
		break // the signal-specific variable wins over the general one
	}
	sampler, err := samplerFromEnv()
	if err != nil {
		return s, err
	}
	s.sampler = sampler
	return s, nil
}

func samplerFromEnv() (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := 1.0
	if arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	switch name {
	case "":
		return nil, nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)", name)
}

// New builds a Provider exporting over OTLP/HTTP in batches. It fails,
// rather than starting without spans, when the environment asks for
// something this build cannot do (another protocol or exporter, an
// unknown sampler, an endpoint that is not a URL) or when the set-up
// does not finish within the init timeout. It does not wait for the
// collector: spans queue until it answers.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	s, err := readSettings()
	if err != nil {
		return nil, err
	}
	timeout := cfg.InitTimeout
	if timeout <= 0 {
		timeout = DefaultInitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var attrs []attribute.KeyValue
	if cfg.ServiceName != "" {
		attrs = append(attrs, attribute.String("service.name", cfg.ServiceName))
	}
	// Later detectors win: the environment overrides the default name.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	exp, err := exporterConfig()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tracing set-up did not finish within %v: %w", timeout, err)
	}
	if cfg.ErrorHandler != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(cfg.ErrorHandler))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if s.sampler != nil {
		opts = append(opts, sdktrace.WithSampler(s.sampler))
	}
	return &Provider{sdk: sdktrace.NewTracerProvider(opts...), endpoint: exp.url}, nil
}

// Endpoint is where spans go: the OTLP traces URL the environment names,
// or the default.
func (p *Provider) Endpoint() string { return p.endpoint }

// EndpointConfigured reports whether the environment names an OTLP
// endpoint for traces (the router turns tracing on by itself then).
func EndpointConfigured() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

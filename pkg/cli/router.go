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
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// Where the release manifests install the router (manifests/router).
const (
	DefaultRouterNamespace = "agent-sandbox-system"
	DefaultRouterService   = "sandbox-router-svc"
	DefaultRouterPort      = 8080
	// DefaultRouterAudience is the audience the shipped router accepts
	// (--authz-tokenreview-audiences).
	DefaultRouterAudience = "agent-sandbox-router"
	// routerTokenTTL is the lifetime of a token minted with
	// --router-service-account: one invocation's worth, and the
	// TokenRequest API's minimum.
	routerTokenTTL = 10 * time.Minute
	// portForwardReadyTimeout bounds the wait for the port-forward's
	// local listener.
	portForwardReadyTimeout = 30 * time.Second
)

// routerFlags say how the data-plane verbs reach the router and what token
// they present to it.
type routerFlags struct {
	url            string
	namespace      string
	service        string
	token          string
	serviceAccount string
	audience       string
}

func defaultRouterFlags() routerFlags {
	return routerFlags{namespace: DefaultRouterNamespace, service: DefaultRouterService, audience: DefaultRouterAudience}
}

// addFlags registers the flags with f's values as their defaults.
func (f *routerFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "router-url", "", "URL of the sandbox router (env "+EnvRouterURL+"); unset: port-forward to the router Service")
	fs.StringVar(&f.namespace, "router-namespace", f.namespace, "namespace of the router Service to port-forward to")
	fs.StringVar(&f.service, "router-service", f.service, "name of the router Service to port-forward to")
	fs.StringVar(&f.token, "router-token", "", "bearer token for the router (env "+EnvRouterToken+"); unset: --router-service-account, else the kubeconfig user's token")
	fs.StringVar(&f.serviceAccount, "router-service-account", "", "mint a short-lived router token for this ServiceAccount of the namespace (TokenRequest)")
	fs.StringVar(&f.audience, "router-audience", f.audience, "audience of the token minted for --router-service-account")
}

// dataPlane returns an SDK client that reaches runtimes through the router,
// and a func that closes what was opened for it.
func (o *Options) dataPlane(ctx context.Context) (*clients, *sdk.Client, func(), error) {
	if err := validRouterURL(o.routerURL()); err != nil {
		return nil, nil, nil, err
	}
	c, err := o.newClients()
	if err != nil {
		return nil, nil, nil, err
	}
	token, err := o.routerToken(ctx, c)
	if err != nil {
		return nil, nil, nil, err
	}
	base, closeRouter, err := o.openRouter(ctx, c)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := []sdk.ClientOption{sdk.WithRouterURL(base), sdk.WithDefaultNamespace(c.namespace), sdk.WithUserAgent(userAgent)}
	if token != nil {
		opts = append(opts, sdk.WithTokenSource(token))
	}
	sc, err := sdk.NewClientForClientset(c.agents, opts...)
	if err != nil {
		closeRouter()
		return nil, nil, nil, err
	}
	return c, sc, closeRouter, nil
}

// routerURL is --router-url, else its environment variable.
func (o *Options) routerURL() string {
	if o.router.url != "" {
		return o.router.url
	}
	return o.getenv(EnvRouterURL)
}

// discoverRouter uses --router-url, or port-forwards to the router Service.
func (o *Options) discoverRouter(ctx context.Context, c *clients) (string, func(), error) {
	if u := o.routerURL(); u != "" {
		return u, func() {}, nil
	}
	return forwardToRouter(ctx, c, o.router.namespace, o.router.service, o.streams.ErrOut)
}

// PortForwardRouter opens what the data-plane verbs open without
// --router-url: a port-forward from a free port on 127.0.0.1, through the
// API server, to a Ready Pod behind the router Service namespace/service.
// It returns the router's base URL and a func that closes the forward. For
// programs that reach the router with the SDK the way the plugin does (the
// e2e suite on kind).
func PortForwardRouter(ctx context.Context, cfg *rest.Config, namespace, service string, errOut io.Writer) (string, func(), error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	return forwardToRouter(ctx, &clients{config: cfg, kube: kube}, namespace, service, errOut)
}

func forwardToRouter(ctx context.Context, c *clients, namespace, service string, errOut io.Writer) (string, func(), error) {
	pod, port, err := routerBackend(ctx, c, namespace, service)
	if err != nil {
		return "", nil, err
	}
	local, stop, err := portForward(ctx, c, namespace, pod, port, errOut)
	if err != nil {
		return "", nil, err
	}
	return "http://127.0.0.1:" + strconv.Itoa(local), stop, nil
}

// routerBackend picks a Running, Ready Pod behind the router Service and
// the Pod port that the Service's proxy port targets.
func routerBackend(ctx context.Context, c *clients, namespace, service string) (string, int, error) {
	svc, err := c.kube.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("finding the router (Service %s/%s; give --router-url to skip the port-forward): %w", namespace, service, err)
	}
	var target *intstr.IntOrString
	for _, p := range svc.Spec.Ports {
		if p.Port == DefaultRouterPort || len(svc.Spec.Ports) == 1 {
			target = ptr.To(p.TargetPort)
			if target.IntValue() == 0 && target.Type == intstr.Int {
				*target = intstr.FromInt32(p.Port)
			}
			break
		}
	}
	if target == nil {
		return "", 0, fmt.Errorf("router Service %s/%s has no port %d", namespace, service, DefaultRouterPort)
	}
	if len(svc.Spec.Selector) == 0 {
		return "", 0, fmt.Errorf("router Service %s/%s has no selector", namespace, service)
	}
	pods, err := c.kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", 0, fmt.Errorf("listing router Pods: %w", err)
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !podReady(pod) {
			continue
		}
		if port, ok := containerPort(pod, *target); ok {
			return pod.Name, port, nil
		}
	}
	return "", 0, fmt.Errorf("router Service %s/%s has no Ready Pod serving port %s", namespace, service, target.String())
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPort resolves a Service targetPort (a number or a port name) on
// one Pod.
func containerPort(pod *corev1.Pod, target intstr.IntOrString) (int, bool) {
	if target.Type == intstr.Int {
		return target.IntValue(), true
	}
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.Name == target.StrVal {
				return int(p.ContainerPort), true
			}
		}
	}
	return 0, false
}

// portForward opens a port-forward from a free port on 127.0.0.1 to the
// Pod's port, through the API server (client-go's SPDY port-forward, what
// kubectl port-forward does), and returns the local port.
func portForward(ctx context.Context, c *clients, namespace, pod string, port int, errOut io.Writer) (int, func(), error) {
	transport, upgrader, err := spdy.RoundTripperFor(c.config)
	if err != nil {
		return 0, nil, err
	}
	u := c.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stop := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, errOut)
	if err != nil {
		return 0, nil, err
	}
	// done is closed when ForwardPorts returns, with its error in
	// forwardErr; once stop is closed that error only reports the
	// teardown, and waiting for it is what matters.
	var forwardErr error
	done := make(chan struct{})
	go func() {
		forwardErr = pf.ForwardPorts()
		close(done)
	}()
	closeFn := func() {
		close(stop)
		<-done
	}
	timer := time.NewTimer(portForwardReadyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-done:
		return 0, nil, fmt.Errorf("port-forwarding to router Pod %s/%s: %w", namespace, pod, forwardErr)
	case <-timer.C:
		close(stop)
		<-done
		return 0, nil, fmt.Errorf("port-forwarding to router Pod %s/%s: %w", namespace, pod, context.DeadlineExceeded)
	case <-ctx.Done():
		close(stop)
		<-done
		return 0, nil, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		closeFn()
		return 0, nil, fmt.Errorf("port-forwarding to router Pod %s/%s: no local port (%v)", namespace, pod, err)
	}
	return int(ports[0].Local), closeFn, nil
}

// routerToken picks the router credential: --router-token (or its
// environment variable), else a token minted for --router-service-account,
// else the kubeconfig user's bearer token (which kubectl's --token sets).
// nil means no token: the router's shipped auth mode will refuse.
func (o *Options) routerToken(ctx context.Context, c *clients) (sdk.TokenSource, error) {
	tok := o.router.token
	if tok == "" {
		tok = o.getenv(EnvRouterToken)
	}
	if tok != "" {
		return staticToken(tok), nil
	}
	if sa := o.router.serviceAccount; sa != "" {
		tr, err := c.kube.CoreV1().ServiceAccounts(c.namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{
				Audiences:         []string{o.router.audience},
				ExpirationSeconds: ptr.To(int64(routerTokenTTL / time.Second)),
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("requesting a router token for ServiceAccount %s/%s: %w", c.namespace, sa, err)
		}
		return staticToken(tr.Status.Token), nil
	}
	if c.config == nil {
		return nil, nil
	}
	if c.config.BearerToken != "" {
		return staticToken(c.config.BearerToken), nil
	}
	if file := c.config.BearerTokenFile; file != "" {
		// Read per request, as client-go does, so a rotated file works.
		return func(context.Context) (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("reading the kubeconfig token file: %w", err)
			}
			return strings.TrimSpace(string(b)), nil
		}, nil
	}
	return nil, nil
}

func staticToken(tok string) sdk.TokenSource {
	return func(context.Context) (string, error) { return tok, nil }
}

// routerHint explains the router's 401 and 403, which otherwise read as
// bare status codes.
func routerHint(err error) error {
	var he *sdk.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	switch he.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w\nhint: the router needs a bearer token for its audience (default %s): give --router-token, or --router-service-account NAME to mint one", err, DefaultRouterAudience)
	case http.StatusForbidden:
		return fmt.Errorf("%w\nhint: the token's user needs get on sandboxes/proxy in the namespace (docs/router.md)", err)
	}
	return err
}

// validRouterURL checks --router-url before anything is sent.
func validRouterURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("--router-url %q: want http(s)://host[:port]", raw)
	}
	return nil
}

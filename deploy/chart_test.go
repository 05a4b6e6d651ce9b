// Package deploy_test checks what deploy/ ships: the Helm chart renders,
// for the default and the full values, into objects that decode strictly
// as the Kubernetes API types, with a gateway config the gateway accepts.
package deploy_test

import (
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/councildata/gateway/gateway/config"
)

// render renders the chart with values (over values.yaml) as release gw
// in namespace councils, and returns every object's YAML by kind/name.
func render(t *testing.T, values map[string]any) (map[string][]byte, error) {
	t.Helper()
	chrt, err := loader.Load("helm/council-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if err := chrt.Validate(); err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(chrt, values, chartutil.ReleaseOptions{Name: "gw", Namespace: "councils", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	objs := map[string][]byte{}
	for name, text := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var meta metav1.TypeMeta
			var om struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if err := yaml.Unmarshal([]byte(doc), &om); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			objs[meta.Kind+"/"+om.Metadata.Name] = []byte(doc)
		}
	}
	return objs, nil
}

// decode decodes an object strictly (no field the type does not have)
// into out.
func decode(t *testing.T, key string, doc []byte, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, out); err != nil {
		t.Errorf("%s does not decode strictly as %T: %v\n%s", key, out, err, doc)
	}
}

// decodeAll decodes every rendered object as its Kubernetes type.
func decodeAll(t *testing.T, objs map[string][]byte) {
	t.Helper()
	for key, doc := range objs {
		kind, _, _ := strings.Cut(key, "/")
		switch kind {
		case "Deployment":
			decode(t, key, doc, &appsv1.Deployment{})
		case "Service":
			decode(t, key, doc, &corev1.Service{})
		case "ConfigMap":
			decode(t, key, doc, &corev1.ConfigMap{})
		case "Secret":
			decode(t, key, doc, &corev1.Secret{})
		case "PersistentVolumeClaim":
			decode(t, key, doc, &corev1.PersistentVolumeClaim{})
		case "Ingress":
			decode(t, key, doc, &networkingv1.Ingress{})
		case "PodDisruptionBudget":
			decode(t, key, doc, &policyv1.PodDisruptionBudget{})
		case "NetworkPolicy":
			decode(t, key, doc, &networkingv1.NetworkPolicy{})
		case "HorizontalPodAutoscaler":
			decode(t, key, doc, &autoscalingv2.HorizontalPodAutoscaler{})
		case "ServiceMonitor":
			// The Prometheus Operator's type is not in the Kubernetes API
			// modules: its fields the chart sets, strictly.
			var sm struct {
				metav1.TypeMeta `json:",inline"`
				Metadata        metav1.ObjectMeta `json:"metadata"`
				Spec            struct {
					Selector  metav1.LabelSelector `json:"selector"`
					Endpoints []struct {
						Port     string `json:"port"`
						Path     string `json:"path"`
						Interval string `json:"interval"`
					} `json:"endpoints"`
				} `json:"spec"`
			}
			decode(t, key, doc, &sm)
		default:
			t.Errorf("%s: a kind the test does not know", key)
		}
	}
}

var secrets = map[string]any{"existingSecret": "gw-secrets"}

func TestChartDefaultValues(t *testing.T) {
	if _, err := render(t, nil); err == nil || !strings.Contains(err.Error(), "secrets.existingSecret") {
		t.Errorf("no secrets: %v", err)
	}
	objs, err := render(t, map[string]any{"secrets": secrets})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, objs)
	for _, want := range []string{"Deployment/gw-council-gateway", "ConfigMap/gw-council-gateway-config", "PersistentVolumeClaim/gw-council-gateway-audit",
		"Service/gw-council-gateway-http", "Service/gw-council-gateway-flight", "Service/gw-council-gateway-postgres", "Service/gw-council-gateway-admin",
		"PodDisruptionBudget/gw-council-gateway"} {
		if objs[want] == nil {
			t.Errorf("no %s among %v", want, keys(objs))
		}
	}
	for _, absent := range []string{"Ingress/gw-council-gateway", "ServiceMonitor/gw-council-gateway", "HorizontalPodAutoscaler/gw-council-gateway", "Secret/gw-secrets"} {
		if objs[absent] != nil {
			t.Errorf("%s rendered by default", absent)
		}
	}
	var d appsv1.Deployment
	decode(t, "Deployment", objs["Deployment/gw-council-gateway"], &d)
	c := d.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("the container's security context: %+v", sc)
	}
	if ps := d.Spec.Template.Spec.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Errorf("the pod's security context: %+v", ps)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: %+v %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources: %+v", c.Resources)
	}
}

// TestChartFullValues: everything on (an Ingress, a ServiceMonitor, an
// autoscaler, the policies from the values, the secrets made by the
// chart), and the gateway config in the ConfigMap is one the gateway
// itself accepts.
func TestChartFullValues(t *testing.T) {
	values := map[string]any{
		"image":               map[string]any{"repository": "registry.example.gov.uk/council-gateway", "tag": "1.2.3"},
		"secrets":             map[string]any{"values": map[string]any{"hash_salt": "s", "flight_ticket_key": "f", "audit_hmac_key": "h", "audit_signing_key.pem": "-----BEGIN PRIVATE KEY-----\n..."}},
		"audit":               map[string]any{"persistence": map[string]any{"enabled": false}},
		"ingress":             map[string]any{"enabled": true, "className": "nginx", "host": "gateway.example.gov.uk", "tls": []any{map[string]any{"secretName": "gw-tls", "hosts": []any{"gateway.example.gov.uk"}}}},
		"service":             map[string]any{"type": "LoadBalancer", "postgres": map[string]any{"enabled": true}},
		"serviceMonitor":      map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"autoscaling":         map[string]any{"enabled": true, "minReplicas": 1, "maxReplicas": 1},
		"networkPolicy":       map[string]any{"enabled": true, "adminFrom": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}}},
		"agreementsConfigMap": "gw-agreements",
		"extraEnv":            []any{map[string]any{"name": "FIFE_DSN", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "fife-db", "key": "dsn"}}}},
		"policies":            map[string]any{"gateway.rego": "package gateway\n", "masks.rego": "package gateway\n"},
		"config": map[string]any{
			"query":   map[string]any{"timeout": "30s", "memory_limit": "2GB"},
			"sources": []any{map[string]any{"id": "fife", "council": "Fife Council", "gss": "S12000047", "type": "postgres", "dsn": "${FIFE_DSN}"}},
			"requesters": []any{map[string]any{"id": "analyst@fife", "organisation": "Fife Council", "roles": []any{"analyst"}, "purposes": []any{"research"},
				"key_sha256": "cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04"}},
			"server": map[string]any{"write_timeout": "45s"},
		},
	}
	objs, err := render(t, values)
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, objs)
	for _, want := range []string{"Ingress/gw-council-gateway", "ServiceMonitor/gw-council-gateway", "HorizontalPodAutoscaler/gw-council-gateway",
		"Secret/gw-council-gateway-secrets", "ConfigMap/gw-council-gateway-policies"} {
		if objs[want] == nil {
			t.Errorf("no %s among %v", want, keys(objs))
		}
	}
	if objs["PersistentVolumeClaim/gw-council-gateway-audit"] != nil {
		t.Error("a claim for the audit log with persistence off")
	}
	var ing networkingv1.Ingress
	decode(t, "Ingress", objs["Ingress/gw-council-gateway"], &ing)
	if b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service; b.Name != "gw-council-gateway-http" {
		t.Errorf("the Ingress leads to %s, not the HTTP door", b.Name)
	}
	var np networkingv1.NetworkPolicy
	decode(t, "NetworkPolicy", objs["NetworkPolicy/gw-council-gateway"], &np)
	if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[1].From) != 1 || np.Spec.Ingress[1].Ports[0].Port.IntValue() != 9090 || len(np.Spec.Ingress[0].From) != 0 {
		t.Errorf("the network policy: %+v", np.Spec.Ingress)
	}
	var admin corev1.Service
	decode(t, "Service", objs["Service/gw-council-gateway-admin"], &admin)
	if admin.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("the admin listener's Service is %s: metrics and profiles must not be exposed", admin.Spec.Type)
	}
	// The gateway's config, as the ConfigMap holds it: the gateway
	// accepts it, with the chart's addresses and paths over the values'.
	var cm corev1.ConfigMap
	decode(t, "ConfigMap", objs["ConfigMap/gw-council-gateway-config"], &cm)
	t.Setenv("FIFE_DSN", "postgres://gateway@fife-db/spend") // as extraEnv would give the pod
	cfg, err := config.Parse([]byte(cm.Data["gateway.yaml"]), "/etc/gateway/gateway.yaml")
	if err != nil {
		t.Fatalf("the rendered gateway config is refused: %v\n%s", err, cm.Data["gateway.yaml"])
	}
	if cfg.Server.HTTP != "0.0.0.0:8080" || cfg.Server.Admin != "0.0.0.0:9090" || cfg.Audit.File != "/var/lib/gateway/audit/audit.jsonl" ||
		cfg.Policy.Dir != "/etc/gateway/policies" || cfg.Query.TempDir != "/var/lib/gateway/tmp" || fmt.Sprint(cfg.Server.WriteTimeout) == "0s" {
		t.Errorf("the rendered config: %+v %+v %+v", cfg.Server, cfg.Audit, cfg.Policy)
	}
	var d appsv1.Deployment
	decode(t, "Deployment", objs["Deployment/gw-council-gateway"], &d)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example.gov.uk/council-gateway:1.2.3" {
		t.Errorf("image %s", img)
	}
	if env := d.Spec.Template.Spec.Containers[0].Env; len(env) != 2 || env[1].Name != "FIFE_DSN" || env[1].ValueFrom.SecretKeyRef.Name != "fife-db" {
		t.Errorf("the container's environment: %+v", env)
	}
	var paths []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "policies" {
			for _, it := range v.ConfigMap.Items {
				paths = append(paths, it.Path)
			}
		}
	}
	if strings.Join(paths, ",") != "gateway.rego,masks.rego" {
		t.Errorf("the policies' files: %v", paths)
	}
}

// TestChartWithAPolicyBundle: a config whose policy comes from a bundle
// server gets no policy directory from the chart (the gateway refuses
// both).
func TestChartWithAPolicyBundle(t *testing.T) {
	objs, err := render(t, map[string]any{"secrets": secrets, "config": map[string]any{
		"policy":  map[string]any{"bundle": map[string]any{"url": "https://bundles.example.gov.uk/council.tar.gz"}},
		"sources": []any{map[string]any{"id": "fife", "council": "Fife Council", "gss": "S12000047", "type": "sqlite", "path": "/data/fife.sqlite"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	decode(t, "ConfigMap", objs["ConfigMap/gw-council-gateway-config"], &cm)
	cfg, err := config.Parse([]byte(cm.Data["gateway.yaml"]), "/etc/gateway/gateway.yaml")
	if err != nil {
		t.Fatalf("the rendered config is refused: %v\n%s", err, cm.Data["gateway.yaml"])
	}
	if cfg.Policy.Dir != "" || cfg.Policy.Bundle == nil || cfg.Policy.HashSaltFile != "/etc/gateway/secrets/hash_salt" {
		t.Errorf("the rendered policy: %+v", cfg.Policy)
	}
}

// TestChartRefusesWhatCannotWork: settings that would run but break the
// audit's promise are refused when rendering, saying why.
func TestChartRefusesWhatCannotWork(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"two replicas", map[string]any{"secrets": secrets, "replicaCount": 2}, "replicaCount above 1 needs the PostgreSQL audit sink"},
		{"autoscaling over a claim", map[string]any{"secrets": secrets, "autoscaling": map[string]any{"enabled": true, "maxReplicas": 3}}, "autoscaling above one replica"},
		{"a secret missing", map[string]any{"secrets": map[string]any{"values": map[string]any{"hash_salt": "s"}}}, "secrets.values.flight_ticket_key"},
	} {
		if _, err := render(t, c.values); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

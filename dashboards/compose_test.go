package dashboards

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
	"go.yaml.in/yaml/v3"
)

// The parts of the shipped YAML files the stack checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context          string `yaml:"context"`
		DockerfileInline string `yaml:"dockerfile_inline"`
	} `yaml:"build"`
	NetworkMode string            `yaml:"network_mode"`
	Command     []string          `yaml:"command"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   []string          `yaml:"depends_on"`
}

type datasourcesFile struct {
	Datasources []struct {
		Name     string            `yaml:"name"`
		UID      string            `yaml:"uid"`
		Type     string            `yaml:"type"`
		URL      string            `yaml:"url"`
		JSONData map[string]string `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type providersFile struct {
	Providers []struct {
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

type prometheusFile struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		HonorLabels   bool   `yaml:"honor_labels"`
		FileSDConfigs []struct {
			Files []string `yaml:"files"`
		} `yaml:"file_sd_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func readYAML(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// flagValue finds --name=value or -name=value in a command.
func flagValue(cmd []string, name string) string {
	for _, a := range cmd {
		for _, prefix := range []string{"--" + name + "=", "-" + name + "="} {
			if v, ok := strings.CutPrefix(a, prefix); ok {
				return v
			}
		}
	}
	return ""
}

var composeDefault = regexp.MustCompile(`^\$\{\w+:-(.+)\}$`)

// hostPath maps a path inside a container back to the tree through the
// container's bind mounts, or says it is not mounted.
func hostPath(t *testing.T, svc composeService, p string) (string, bool) {
	t.Helper()
	best, bestLen := "", -1
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		src, dst := parts[0], parts[1]
		if (p == dst || strings.HasPrefix(p, dst+"/")) && len(dst) > bestLen {
			best, bestLen = filepath.Join(StackDir, filepath.FromSlash(src), filepath.FromSlash(strings.TrimPrefix(p, dst))), len(dst)
		}
	}
	return best, bestLen >= 0
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	host, port, ok := strings.Cut(hostport, ":")
	if !ok || host != "127.0.0.1" {
		t.Errorf("%q does not listen on 127.0.0.1", hostport)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Errorf("%q: bad port", hostport)
	}
	return n
}

func urlPort(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return portOf(t, u.Host)
}

// TestComposeStack checks that the compose file and the files it mounts
// fit together: every referenced file exists, every container stays on
// loopback, and every port a component listens on is the one the others
// use to reach it. Docker cannot run here, so this is the check there is.
func TestComposeStack(t *testing.T) {
	var compose composeFile
	readYAML(t, filepath.Join(StackDir, "compose.yaml"), &compose)
	for _, name := range []string{"services", "prometheus", "pyroscope", "grafana"} {
		if _, ok := compose.Services[name]; !ok {
			t.Fatalf("compose.yaml has no %s service", name)
		}
	}

	for name, svc := range compose.Services {
		if svc.NetworkMode != "host" {
			t.Errorf("%s: network_mode %q; every container uses the host network so that it can listen on 127.0.0.1 only", name, svc.NetworkMode)
		}
		if svc.Image == "" && svc.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		if svc.Image != "" && (!strings.Contains(svc.Image, ":") || strings.HasSuffix(svc.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned to a version", name, svc.Image)
		}
		for _, dep := range svc.DependsOn {
			if _, ok := compose.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not defined", name, dep)
			}
		}
		for _, v := range svc.Volumes {
			src := strings.Split(v, ":")[0]
			if !strings.HasPrefix(src, ".") {
				t.Errorf("%s: volume %q is not a bind mount of the tree", name, v)
				continue
			}
			if _, err := os.Stat(filepath.Join(StackDir, filepath.FromSlash(src))); err != nil {
				t.Errorf("%s mounts %s, which does not exist in the tree: %v", name, src, err)
			}
		}
	}

	// The services image is built from this repository.
	services := compose.Services["services"]
	if services.Build == nil {
		t.Fatal("the services container has no build section")
	}
	m := composeDefault.FindStringSubmatch(services.Build.Context)
	if m == nil {
		t.Fatalf("build context %q should be ${LEAKLAB_SRC:-default}", services.Build.Context)
	}
	src := filepath.Join(StackDir, filepath.FromSlash(m[1]))
	for _, want := range []string{"go.mod", "cmd/leaklab/main.go"} {
		if _, err := os.Stat(filepath.Join(src, want)); err != nil {
			t.Errorf("build context %s lacks %s: %v", src, want, err)
		}
	}
	if !strings.Contains(services.Build.DockerfileInline, "./cmd/leaklab") {
		t.Error("the inline Dockerfile does not build ./cmd/leaklab")
	}

	// Prometheus: its listen port is the one Grafana and its own
	// self-scrape use, and its config is the tree's.
	prom := compose.Services["prometheus"]
	promPort := portOf(t, flagValue(prom.Command, "web.listen-address"))
	configPath, ok := hostPath(t, prom, flagValue(prom.Command, "config.file"))
	if !ok {
		t.Fatalf("prometheus's --config.file is not mounted from the tree")
	}
	if filepath.Clean(configPath) != filepath.Join(StackDir, "prometheus", "prometheus.yml") {
		t.Errorf("prometheus reads %s, not the shipped prometheus/prometheus.yml", configPath)
	}
	var promConfig prometheusFile
	readYAML(t, configPath, &promConfig)

	// Pyroscope: the services push where it listens, and Grafana reads there.
	pyro := compose.Services["pyroscope"]
	if a := flagValue(pyro.Command, "server.http-listen-address"); a != "127.0.0.1" {
		t.Errorf("pyroscope listens on %q, want 127.0.0.1", a)
	}
	if a := flagValue(pyro.Command, "server.grpc-listen-address"); a != "127.0.0.1" {
		t.Errorf("pyroscope's gRPC listens on %q, want 127.0.0.1", a)
	}
	pyroPort, _ := strconv.Atoi(flagValue(pyro.Command, "server.http-listen-port"))
	pyroGRPC, _ := strconv.Atoi(flagValue(pyro.Command, "server.grpc-listen-port"))
	if got := urlPort(t, flagValue(services.Command, "pyroscope")); got != pyroPort {
		t.Errorf("services push profiles to port %d, pyroscope listens on %d", got, pyroPort)
	}

	// Grafana.
	grafana := compose.Services["grafana"]
	if grafana.Environment["GF_SERVER_HTTP_ADDR"] != "127.0.0.1" {
		t.Errorf("grafana listens on %q, want 127.0.0.1", grafana.Environment["GF_SERVER_HTTP_ADDR"])
	}
	grafanaPort, _ := strconv.Atoi(grafana.Environment["GF_SERVER_HTTP_PORT"])
	var ds datasourcesFile
	readYAML(t, filepath.Join(StackDir, "grafana/provisioning/datasources/leaklab.yaml"), &ds)
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		uids[d.UID] = true
		switch d.Type {
		case "prometheus":
			if d.UID != PrometheusUID {
				t.Errorf("Prometheus datasource uid %q, dashboards expect %q", d.UID, PrometheusUID)
			}
			if got := urlPort(t, d.URL); got != promPort {
				t.Errorf("Grafana reads Prometheus on port %d, it listens on %d", got, promPort)
			}
			if d.JSONData["timeInterval"] != promConfig.Global.ScrapeInterval {
				t.Errorf("datasource timeInterval %q differs from the scrape interval %q: $__rate_interval would be wrong",
					d.JSONData["timeInterval"], promConfig.Global.ScrapeInterval)
			}
		case "grafana-pyroscope-datasource":
			if d.UID != PyroscopeUID {
				t.Errorf("Pyroscope datasource uid %q, dashboards expect %q", d.UID, PyroscopeUID)
			}
			if got := urlPort(t, d.URL); got != pyroPort {
				t.Errorf("Grafana reads Pyroscope on port %d, it listens on %d", got, pyroPort)
			}
		default:
			t.Errorf("unexpected datasource type %q", d.Type)
		}
	}
	if !uids[PrometheusUID] || !uids[PyroscopeUID] {
		t.Errorf("provisioned datasource uids %v lack %s or %s", uids, PrometheusUID, PyroscopeUID)
	}
	if p, ok := hostPath(t, grafana, "/etc/grafana/provisioning/datasources/leaklab.yaml"); !ok || !exists(p) {
		t.Error("grafana does not mount the tree's provisioning at /etc/grafana/provisioning")
	}
	var providers providersFile
	readYAML(t, filepath.Join(StackDir, "grafana/provisioning/dashboards/leaklab.yaml"), &providers)
	if len(providers.Providers) != 1 {
		t.Fatalf("want one dashboards provider, got %d", len(providers.Providers))
	}
	for _, d := range All() {
		p, ok := hostPath(t, grafana, path.Join(providers.Providers[0].Options.Path, d.File))
		if !ok || !exists(p) {
			t.Errorf("the dashboards provider's path %s does not hold %s in the grafana container", providers.Providers[0].Options.Path, d.File)
		}
	}
	if p, ok := hostPath(t, grafana, grafana.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]); !ok || !exists(p) {
		t.Errorf("the home dashboard %s is not a mounted dashboard", grafana.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	}

	// The targets file the services write is one Prometheus reads.
	targetsFile, ok := hostPath(t, services, flagValue(services.Command, "targets-file"))
	if !ok {
		t.Fatal("the services' --targets-file is not on a mount of the tree")
	}
	read := false
	for _, sc := range promConfig.ScrapeConfigs {
		for _, sd := range sc.FileSDConfigs {
			for _, f := range sd.Files {
				glob := filepath.Join(filepath.Dir(configPath), filepath.FromSlash(f))
				if ok, _ := filepath.Match(glob, targetsFile); ok {
					read = true
					if sc.JobName != Job {
						t.Errorf("the targets file is scraped as job %q, the dashboards and docs say %q", sc.JobName, Job)
					}
					if !sc.HonorLabels {
						t.Error("the leaklab job needs honor_labels: the services expose service and variant themselves")
					}
				}
			}
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				if sc.JobName == "prometheus" && portOf(t, target) != promPort {
					t.Errorf("prometheus scrapes itself on %s, it listens on %d", target, promPort)
				}
			}
		}
	}
	if !read {
		t.Errorf("prometheus reads no file_sd file matching %s, where the services write their targets", targetsFile)
	}

	// Every port is used once: the services' range must not run into the
	// other components.
	base, err := strconv.Atoi(flagValue(services.Command, "base-port"))
	if err != nil {
		t.Fatalf("services: --base-port: %v", err)
	}
	count := len(leaks.All())
	if flagValue(services.Command, "variants") == "both" {
		count *= 2
	}
	owners := map[int]string{}
	claim := func(port int, who string) {
		if port <= 0 {
			t.Errorf("%s has no port", who)
		}
		if other, taken := owners[port]; taken {
			t.Errorf("port %d is used by both %s and %s", port, other, who)
		}
		owners[port] = who
	}
	claim(promPort, "prometheus")
	claim(pyroPort, "pyroscope")
	claim(pyroGRPC, "pyroscope gRPC")
	claim(grafanaPort, "grafana")
	for i := range count {
		claim(base+i, fmt.Sprintf("sample service %d", i+1))
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
	"github.com/leaklab/leaklab/internal/freeport"
)

// server is a third-party Go server installed from a Debian package, started
// as a plain process on loopback with its data in a temporary directory.
type server struct {
	name   string // short name used in case names
	binary string // executable looked up in PATH, /usr/sbin and /usr/bin
	pkg    string // Debian package that installs it
	module string // its main module, as `go version -m` prints it
	// start returns the command line (without the binary), the files to
	// write into dir first, and the ports the case needs to know.
	start func(dir string, p *ports) (args []string, files map[string]string)
	// env is added to the process environment (dir substituted).
	env func(dir string) []string
}

// ports hands out free loopback ports and remembers the ones that matter.
type ports struct {
	pprof   int // the port serving /debug/pprof (what watch is pointed at)
	api     int // the server's own client API
	scraped int // prometheus only: the exporter it scrapes (run by the driver)
	// scrapedLn holds the exporter's port from the moment it is chosen
	// until the driver serves on it, after the warm-up: closed in
	// between, the port was taken once by one of the catalog's services,
	// which the long tier starts at the same time (CI, 2026-12-04).
	scrapedLn net.Listener
}

// listenPort opens a listener on a free loopback port and returns it
// with its port.
func listenPort() (net.Listener, int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	return l, l.Addr().(*net.TCPAddr).Port
}

// freePort finds a free loopback port below the kernel's ephemeral range
// (freeport: beside the long tier's 76 catalog services, each bound to
// port 0, one took etcd's peer port between the check and etcd's bind).
// Another process may still take it before the server binds it; the
// start then fails with a clear log, and the case is reported as failed
// rather than misjudged.
func freePort() (int, error) { return freeport.Range(1) }

var servers = map[string]*server{
	"etcd": {
		name: "etcd", binary: "etcd", pkg: "etcd-server", module: "go.etcd.io/etcd",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			peer := mustPort()
			p.api = mustPort()
			p.pprof = p.api // --enable-pprof serves /debug/pprof on the client URL
			client := fmt.Sprintf("http://127.0.0.1:%d", p.api)
			peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
			return []string{
				"--name", "rw", "--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
				"--initial-cluster", "rw=" + peerURL,
				"--enable-pprof", "--log-level", "warn", "--logger", "zap",
			}, nil
		},
	},
	"pushgateway": {
		name: "pushgateway", binary: "prometheus-pushgateway", pkg: "prometheus-pushgateway",
		module: "github.com/prometheus/pushgateway",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			p.api = mustPort()
			p.pprof = p.api
			// Debian's default persistence file is shared by every instance.
			return []string{
				fmt.Sprintf("--web.listen-address=127.0.0.1:%d", p.api), "--log.level=warn",
				"--persistence.file=" + filepath.Join(dir, "pushgateway.data"),
			}, nil
		},
	},
	"alertmanager": {
		name: "alertmanager", binary: "prometheus-alertmanager", pkg: "prometheus-alertmanager",
		module: "github.com/prometheus/alertmanager",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			p.api = mustPort()
			p.pprof = p.api
			cfg := filepath.Join(dir, "alertmanager.yml")
			return []string{
					"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data"),
					fmt.Sprintf("--web.listen-address=127.0.0.1:%d", p.api),
					"--cluster.listen-address=", "--log.level=warn",
				}, map[string]string{cfg: `route:
  receiver: "null"
  group_by: [alertname]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 4h
receivers:
  - name: "null"
`}
		},
	},
	"prometheus": {
		name: "prometheus", binary: "prometheus", pkg: "prometheus",
		module: "github.com/prometheus/prometheus",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			p.api = mustPort()
			p.pprof = p.api
			p.scrapedLn, p.scraped = listenPort()
			cfg := filepath.Join(dir, "prometheus.yml")
			return []string{
					"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
					fmt.Sprintf("--web.listen-address=127.0.0.1:%d", p.api), "--log.level=warn",
				}, map[string]string{cfg: fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, p.scraped)}
		},
	},
	"nats": {
		name: "nats", binary: "nats-server", pkg: "nats-server", module: "github.com/nats-io/nats-server",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			p.api = mustPort()
			p.pprof = mustPort()
			return []string{"-a", "127.0.0.1", "-p", fmt.Sprint(p.api), "--profile", fmt.Sprint(p.pprof)}, nil
		},
	},
	"influxdb": {
		name: "influxdb", binary: "influxd", pkg: "influxdb", module: "github.com/influxdata/influxdb",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			p.api = mustPort()
			p.pprof = p.api
			rpc := mustPort()
			cfg := filepath.Join(dir, "influxdb.conf")
			// The write cache is snapshotted at 1 MiB (default 25 MiB) so
			// that a steady write load reaches its steady state within the
			// warm-up instead of filling the cache during the watch.
			return []string{"-config", cfg}, map[string]string{cfg: fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  cache-snapshot-memory-size = 1048576
  query-log-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  pprof-enabled = true
[continuous_queries]
  enabled = false
`, rpc, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), p.api)}
		},
	},
	"caddy": {
		name: "caddy", binary: "caddy", pkg: "caddy", module: "github.com/caddyserver/caddy/v2",
		start: func(dir string, p *ports) ([]string, map[string]string) {
			p.api = mustPort()
			p.pprof = mustPort() // the admin endpoint serves /debug/pprof
			cfg := filepath.Join(dir, "caddy.json")
			return []string{"run", "--config", cfg}, map[string]string{cfg: fmt.Sprintf(`{
  "admin": {"listen": "127.0.0.1:%d", "config": {"persist": false}},
  "logging": {"logs": {"default": {"level": "WARN"}}},
  "apps": {"http": {"servers": {"rw": {
    "listen": ["127.0.0.1:%d"],
    "automatic_https": {"disable": true},
    "routes": [{"handle": [{"handler": "static_response", "status_code": 200, "body": "hello from caddy\n"}]}]
  }}}}
}`, p.pprof, p.api)}
		},
		env: func(dir string) []string {
			return []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
		},
	},
}

func mustPort() int {
	p, err := freePort()
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	return p
}

// lookBinary finds a server's executable: PATH first, then the sbin and bin
// directories Debian installs into (sbin is not in every PATH).
func lookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /usr/bin", name)
}

// running is a started server process.
type running struct {
	srv   *server
	proc  *childproc.Proc // dies with the suite, even when the suite is killed
	dir   string
	log   string
	ports ports
}

// pprofURL is the base URL watch is pointed at.
func (r *running) pprofURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.ports.pprof) }

// apiURL is the server's own HTTP API (not meaningful for nats).
func (r *running) apiURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.ports.api) }

// startServer starts srv with its data under dir and waits until its
// /debug/pprof/ answers. A port that another process took between
// freePort and the server's bind (many cases start at once) is not the
// server's failure: it starts again on fresh ports, up to three times.
func startServer(ctx context.Context, srv *server, dir string) (*running, error) {
	for try := 1; ; try++ {
		r, err := startServerOnce(ctx, srv, dir)
		if err == nil || try == 3 || !errors.Is(err, errPortTaken) {
			return r, err
		}
	}
}

// errPortTaken marks a start that failed because a port was taken.
var errPortTaken = errors.New("a port was taken")

func startServerOnce(ctx context.Context, srv *server, dir string) (_ *running, err error) {
	bin, err := lookBinary(srv.binary)
	if err != nil {
		return nil, err
	}
	r := &running{srv: srv, dir: dir, log: filepath.Join(dir, srv.name+".log")}
	args, files := srv.start(dir, &r.ports)
	defer func() {
		if err != nil && r.ports.scrapedLn != nil {
			r.ports.scrapedLn.Close()
		}
	}()
	for path, body := range files {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(r.log)
	if err != nil {
		return nil, err
	}
	env := os.Environ()
	if srv.env != nil {
		env = append(env, srv.env(dir)...)
	}
	r.proc, err = childproc.Start(childproc.Spec{Argv: append([]string{bin}, args...), Env: env, Dir: dir, Stdout: logf, Stderr: logf})
	if err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		<-r.proc.Exited()
		logf.Close()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-r.proc.Exited():
			tail := r.logTail()
			if strings.Contains(tail, "address already in use") {
				return nil, fmt.Errorf("%s exited at start (%v): %s: %w", srv.name, r.proc.Err(), tail, errPortTaken)
			}
			return nil, fmt.Errorf("%s exited at start (%v): %s", srv.name, r.proc.Err(), tail)
		default:
		}
		if err := getOK(ctx, r.pprofURL()+"/debug/pprof/"); err == nil {
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("%s: /debug/pprof/ did not answer within 60s: %s", srv.name, r.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop interrupts the process, kills it when it has not exited 5 s
// later, and waits for it.
func (r *running) stop() {
	r.proc.Signal(syscall.SIGINT)
	_ = r.proc.Wait(5 * time.Second)
}

// exited says whether the process has died (and why).
func (r *running) exited() error {
	select {
	case <-r.proc.Exited():
		return fmt.Errorf("%s exited during the case (%v): %s", r.srv.name, r.proc.Err(), r.logTail())
	default:
		return nil
	}
}

func (r *running) logTail() string {
	b, _ := os.ReadFile(r.log)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	if s == "" {
		return "(empty log)"
	}
	return s
}

var quickClient = &http.Client{Timeout: 5 * time.Second}

func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := quickClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

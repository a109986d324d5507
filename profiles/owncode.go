package profiles

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// OwnCode decides which functions belong to the profiled service itself,
// as opposed to the standard library and the libraries it uses. A
// goroutine leak site (diff) and a watch suspect are both named after the
// first frame of the service's own code, so both use this one rule.
type OwnCode struct {
	// Modules are the module paths the prefixes were built from, when
	// they were (OwnCodeFor); a command line can pass them on as --own.
	Modules []string `json:"modules,omitempty"`
	// Prefixes of function names that are the service's own code, such as
	// "github.com/acme/orders/". When empty, everything outside the
	// standard library and the well-known libraries below counts.
	Prefixes []string `json:"prefixes,omitempty"`
	// Source says where the rule came from (OwnFromFlag, OwnFromBuildInfo,
	// OwnFromMainPath, ...), so a report can say why it named what it named.
	Source string `json:"source,omitempty"`
}

// wellKnownLibraries are modules a service uses but does not write; their
// frames are skipped when looking for the service's own code, so that a
// goroutine parked in a connection pool is named after the service's
// function that asked the pool, not after the pool.
var wellKnownLibraries = []string{
	"github.com/prometheus/", "github.com/grafana/pyroscope-go", "github.com/google/pprof/",
	"google.golang.org/", "golang.org/x/", "github.com/spf13/", "go.uber.org/", "github.com/gorilla/",
	"github.com/go-chi/", "github.com/labstack/", "github.com/gin-gonic/", "github.com/valyala/",
	"github.com/jackc/", "github.com/redis/", "github.com/go-redis/", "go.opentelemetry.io/",
	"github.com/klauspost/", "github.com/golang/protobuf/", "github.com/grpc-ecosystem/",
	"github.com/aws/", "cloud.google.com/", "k8s.io/", "sigs.k8s.io/", "github.com/sirupsen/",
	"github.com/rs/zerolog", "github.com/HdrHistogram/",
}

// Match reports whether fn is the service's own code.
func (o OwnCode) Match(fn string) bool {
	if len(o.Prefixes) > 0 {
		for _, p := range o.Prefixes {
			if strings.HasPrefix(fn, p) {
				return true
			}
		}
		return false
	}
	if isStdlibFunc(fn) {
		return false
	}
	for _, lib := range wellKnownLibraries {
		if strings.HasPrefix(fn, lib) {
			return false
		}
	}
	return true
}

// OwnCodeFor builds an OwnCode from module paths (or any function-name
// prefixes): each path covers its packages, and package main is always
// the service's own. No path gives the default rule.
func OwnCodeFor(modules ...string) OwnCode {
	var o OwnCode
	for _, m := range modules {
		m = strings.TrimSuffix(strings.TrimSpace(m), "/")
		if m == "" {
			continue
		}
		o.Modules = append(o.Modules, m)
		o.Prefixes = append(o.Prefixes, m+"/", m+".")
	}
	if len(o.Prefixes) > 0 {
		o.Prefixes = append(o.Prefixes, "main.")
	}
	return o
}

var buildInfoPath = regexp.MustCompile(`^go_build_info\{[^}]*\bpath="([^"]+)"`)

// DetectModule asks the target's /metrics for client_golang's
// go_build_info, whose path label is the main module. It returns "" when
// the target does not export it or cannot be asked: the caller then falls
// back to the default rule.
func DetectModule(ctx context.Context, client *http.Client, base string) string {
	module := ""
	ScanMetrics(ctx, client, base, 10*time.Second, 8<<20, func(line string) bool {
		if m := buildInfoPath.FindStringSubmatch(line); m != nil {
			module = m[1]
		}
		return module == ""
	})
	return module
}

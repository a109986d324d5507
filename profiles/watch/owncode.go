package watch

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// OwnCode decides which functions belong to the watched service itself,
// as opposed to the standard library and the libraries it uses: a suspect
// is named after the first frame of its own code.
type OwnCode struct {
	// Prefixes of function names that are the service's own code, such as
	// "github.com/acme/orders/". When empty, everything outside the
	// standard library and the well-known libraries below counts.
	Prefixes []string `json:"prefixes,omitempty"`
}

// wellKnownLibraries are modules a service uses but does not write; their
// frames are skipped when looking for the service's own code.
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
	if profiles.IsStdlib(fn) {
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
// prefixes): each path covers its packages and package main.
func OwnCodeFor(modules ...string) OwnCode {
	var o OwnCode
	for _, m := range modules {
		m = strings.TrimSuffix(m, "/")
		if m == "" {
			continue
		}
		o.Prefixes = append(o.Prefixes, m+"/", m+".")
	}
	if len(o.Prefixes) > 0 {
		o.Prefixes = append(o.Prefixes, "main.")
	}
	return o
}

var buildInfoPath = regexp.MustCompile(`(?m)^go_build_info\{[^}]*\bpath="([^"]+)"`)

// detectModule asks the target's /metrics for client_golang's
// go_build_info, whose path label is the main module. It returns "" when
// the target does not export it.
func detectModule(ctx context.Context, client *http.Client, base string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return ""
	}
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return ""
	}
	if m := buildInfoPath.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

package profiles

import (
	"reflect"
	"testing"

	"github.com/google/pprof/profile"
)

func profileOfFuncs(funcs ...[2]string) *profile.Profile {
	p := &profile.Profile{}
	for i, f := range funcs {
		p.Function = append(p.Function, &profile.Function{ID: uint64(i + 1), Name: f[0], Filename: f[1]})
	}
	return p
}

func TestInferOwnCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		funcs  [][2]string
		want   []string // modules; nil: not inferred
		source string
	}{
		{
			name: "distribution GOPATH build of a server under a well-known library's org",
			funcs: [][2]string{
				{"main.main", "/build/prometheus-2.45/_build/src/github.com/prometheus/prometheus/cmd/prometheus/main.go"},
				{"github.com/prometheus/prometheus/tsdb.(*Head).Append", "/build/prometheus-2.45/_build/src/github.com/prometheus/prometheus/tsdb/head.go"},
				{"github.com/prometheus/common/route.(*Router).ServeHTTP", "/build/prometheus-2.45/_build/src/github.com/prometheus/common/route/route.go"},
			},
			want: []string{"github.com/prometheus/prometheus"}, source: OwnFromMainPath,
		},
		{
			name: "-trimpath module build, major version suffix",
			funcs: [][2]string{
				{"main.main", "github.com/caddyserver/caddy/v2/cmd/caddy/main.go"},
				{"github.com/caddyserver/caddy/v2/modules/caddyhttp.(*Server).ServeHTTP", "github.com/caddyserver/caddy/v2/modules/caddyhttp/server.go"},
				{"go.uber.org/zap.(*Logger).Info", "go.uber.org/zap@v1.27.0/logger.go"},
			},
			want: []string{"github.com/caddyserver/caddy"}, source: OwnFromMainPath,
		},
		{
			name: "vanity import path",
			funcs: [][2]string{
				{"main.main", "/usr/share/gocode/src/go.etcd.io/etcd/server/v3/main.go"},
			},
			want: []string{"go.etcd.io/etcd"}, source: OwnFromMainPath,
		},
		{
			name: "module build with full paths: local source is own, the module cache is not",
			funcs: [][2]string{
				{"main.main", "/home/dev/orders/cmd/orders/main.go"},
				{"github.com/acme/orders/store.(*Index).Add", "/home/dev/orders/store/index.go"},
				{"github.com/prometheus/client_golang/prometheus.(*Registry).Gather", "/root/go/pkg/mod/github.com/prometheus/client_golang@v1.25.0/prometheus/registry.go"},
				{"net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go"},
			},
			want: []string{"github.com/acme/orders"}, source: OwnFromLocalSrc,
		},
		{
			name: "a library's instantiation of a standard generic is compiled from the standard library's file",
			funcs: [][2]string{
				{"main.main", "/home/dev/orders/cmd/orders/main.go"},
				{"github.com/acme/orders/store.(*Index).Add", "/home/dev/orders/store/index.go"},
				{"runtime.mallocgc", "/usr/local/go/src/runtime/malloc.go"},
				{"github.com/cilium/ebpf/internal/mountinfo.init.OnceValues[...].func2", "/usr/local/go/src/sync/oncefunc.go"},
				{"github.com/cilium/ebpf/internal/mountinfo.Read", "/root/go/pkg/mod/github.com/cilium/ebpf@v0.22.0/internal/mountinfo/mountinfo.go"},
			},
			want: []string{"github.com/acme/orders"}, source: OwnFromLocalSrc,
		},
		{
			name: "no package main in the profiles",
			funcs: [][2]string{
				{"github.com/acme/orders/store.(*Index).Add", "/home/dev/orders/store/index.go"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := InferOwnCode(profileOfFuncs(tc.funcs...))
			if tc.want == nil {
				if ok {
					t.Fatalf("inferred %+v, want nothing", got)
				}
				return
			}
			if !ok || !reflect.DeepEqual(got.Modules, tc.want) {
				t.Fatalf("inferred %+v (ok %v), want modules %v", got, ok, tc.want)
			}
			if got.Source[:len(tc.source)] != tc.source {
				t.Errorf("source %q, want %q", got.Source, tc.source)
			}
			for _, fn := range tc.funcs {
				lib := !got.Match(fn[0])
				if fn[0] == "main.main" && lib {
					t.Errorf("main.main is not own code")
				}
			}
			if got.Match("github.com/prometheus/common/route.(*Router).ServeHTTP") {
				t.Errorf("a dependency counts as own code")
			}
		})
	}
}

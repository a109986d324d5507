package profiles

import (
	"path"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Where an OwnCode came from, as OwnCode.Source says it.
const (
	OwnFromFlag      = "--own"
	OwnFromBuildInfo = "the go_build_info metric"
	OwnFromMainPath  = "the source path of package main"
	OwnFromLocalSrc  = "the functions built from local source (not the module cache)"
	OwnFromDefault   = "the default rule: everything outside the standard library and well-known libraries"
)

// codeHosts are hosts whose import paths name a repository in two more
// elements (github.com/owner/repo); other domains are vanity paths.
var codeHosts = map[string]bool{
	"github.com": true, "gitlab.com": true, "bitbucket.org": true, "codeberg.org": true,
	"git.sr.ht": true, "gitea.com": true, "golang.org": true, "gopkg.in": false,
}

// repoRoot reduces a package import path to the repository it lives in:
// github.com/prometheus/prometheus/cmd/prometheus → github.com/prometheus/prometheus,
// go.etcd.io/etcd/server/v3/etcdmain → go.etcd.io/etcd, tailscale.com/cmd/x → tailscale.com.
// The major-version suffix (/v2) is below the root, so one prefix covers it.
func repoRoot(pkg string) string {
	elems := strings.Split(pkg, "/")
	n := 1
	switch {
	case codeHosts[elems[0]]:
		n = 3
	case strings.HasPrefix(elems[0], "go.") || elems[0] == "gopkg.in" || elems[0] == "k8s.io":
		n = 2
	}
	if len(elems) < n {
		return pkg
	}
	return strings.Join(elems[:n], "/")
}

// importPathOfFile recovers an import path from a source file's path when
// the path says it: a GOPATH build (…/src/github.com/x/y/cmd/z/main.go, as
// Linux distributions build Go packages) or a -trimpath build
// (github.com/x/y/cmd/z/main.go). It returns the directory's import path, or
// "" when the file path is a plain local directory.
func importPathOfFile(file string) string {
	dir := path.Dir(file)
	if i := strings.LastIndex(dir, "/src/"); i >= 0 {
		if p := dir[i+len("/src/"):]; isDomain(p) {
			return p
		}
	}
	if !strings.HasPrefix(dir, "/") && isDomain(dir) && !strings.Contains(dir, "@") {
		return dir
	}
	return ""
}

// isDomain says whether an import path starts with a domain name.
func isDomain(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return strings.Contains(first, ".") && !strings.HasPrefix(first, ".")
}

// fromModuleCache says whether a source file is a dependency as the go
// command fetched it (module cache or vendor directory), not the main
// module's own source.
func fromModuleCache(file string) bool {
	return strings.Contains(file, "@v") || strings.Contains(file, "/pkg/mod/") || strings.Contains(file, "/vendor/")
}

// packageOf returns the import path of a function's package:
// github.com/x/y/z.(*T).M → github.com/x/y/z.
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if i := strings.IndexByte(fn[slash+1:], '.'); i >= 0 {
		return fn[:slash+1+i]
	}
	return fn
}

// InferOwnCode reads the target's own code from its profiles, for targets
// that do not say it (no go_build_info metric, as distributions' builds
// and many servers have). Two clues, in order:
//
//   - the source path of package main's functions: a GOPATH or -trimpath
//     build names its import path (…/src/github.com/prometheus/prometheus/cmd/prometheus/main.go),
//     whose repository is the own code;
//   - in a module build with full paths, the functions compiled from local
//     source rather than from the module cache are the main module's.
//
// It returns false when neither clue is there; the caller then keeps the
// default rule. A list of well-known libraries never overrides what it
// finds: a server whose module is github.com/prometheus/... is its own code.
func InferOwnCode(ps ...*profile.Profile) (OwnCode, bool) {
	files := map[string]string{} // function → file
	mainFile := ""
	for _, p := range ps {
		if p == nil {
			continue
		}
		for _, f := range p.Function {
			if f.Filename == "" {
				continue
			}
			files[f.Name] = f.Filename
			if f.Name == "main.main" || (mainFile == "" && strings.HasPrefix(f.Name, "main.")) {
				mainFile = f.Filename
			}
		}
	}
	if mainFile != "" {
		if pkg := importPathOfFile(mainFile); pkg != "" {
			root := repoRoot(pkg)
			o := OwnCodeFor(root)
			o.Source = OwnFromMainPath + " (" + mainFile + ")"
			return o, true
		}
	}
	// A module build with full paths: own packages are those whose files
	// are not in the module cache.
	count := map[string]int{}
	goroot := gorootSrc(files)
	for fn, file := range files {
		if isStdlibFunc(fn) || strings.HasPrefix(fn, "main.") || fromModuleCache(file) || !strings.HasPrefix(file, "/") ||
			(goroot != "" && strings.HasPrefix(file, goroot)) {
			continue
		}
		if pkg := packageOf(fn); isDomain(pkg) {
			count[repoRoot(pkg)]++
		}
	}
	if mainFile == "" || fromModuleCache(mainFile) || len(count) == 0 {
		return OwnCode{}, false
	}
	roots := make([]string, 0, len(count))
	for r := range count {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	o := OwnCodeFor(roots...)
	o.Source = OwnFromLocalSrc
	return o, true
}

// gorootSrc returns the standard library's source directory of the build
// the profiles come from ("/usr/local/go/src/"), read off the files of
// its runtime functions, or "" when none has one. A library's
// instantiation of a standard generic (sync.OnceValues, slices.SortFunc)
// is named after the library but compiled from the standard library's
// file: that file says nothing about whose source the library is.
func gorootSrc(files map[string]string) string {
	for fn, file := range files {
		if !strings.HasPrefix(fn, "runtime.") {
			continue
		}
		if i := strings.LastIndex(file, "/src/runtime/"); i >= 0 {
			return file[:i+len("/src/")]
		}
	}
	return ""
}

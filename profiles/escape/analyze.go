package escape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/leaklab/leaklab/internal/childproc"
)

// DefaultPackages is what Analyze builds when given no package patterns.
const DefaultPackages = "./..."

// Options says what to analyse and how.
type Options struct {
	// Dir is where the go command runs (the module, or a directory in it);
	// empty means the current directory. Reported file names are relative
	// to it.
	Dir string
	// Packages are go package patterns; empty means DefaultPackages.
	Packages []string
	// GCFlags are extra compiler flags (for example "-l" to turn off
	// inlining), passed to the analysed packages only.
	GCFlags []string
	// AllFiles keeps findings in files outside the analysed modules, such
	// as standard-library generics instantiated in the analysed code.
	AllFiles bool
	// Go is the go command to run; empty means "go" from PATH.
	Go string
	// Env, when not nil, is the go command's environment.
	Env []string
}

// ErrNoGo means there is no go command to run the compiler with.
var ErrNoGo = errors.New("no go command found in PATH: escape analysis runs the Go compiler; install Go or put it on PATH")

// Analyze compiles the packages with escape-analysis diagnostics turned on
// and returns every finding, sorted by file and position. Packages that do
// not build are listed in Report.Failures with the compiler's message; the
// others are still analysed. An error means nothing could be analysed.
func Analyze(ctx context.Context, opts Options) (*Report, error) {
	goCmd, err := lookGo(opts.Go)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	for _, fl := range opts.GCFlags {
		if strings.Contains(fl, "=") && !strings.HasPrefix(fl, "-") {
			return nil, fmt.Errorf("--gcflags %q: give compiler flags without a package pattern; they apply to the analysed packages", fl)
		}
	}
	logDir, err := os.MkdirTemp("", "leaklab-escape-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(logDir)

	// The module directories tell the analysed code from the standard
	// library and dependencies. In a go.work workspace only the go command
	// knows them, and asking it while the compiler runs costs no
	// wall-clock time; otherwise the nearest go.mod says.
	var roots []string
	var rootsErr error
	var wg sync.WaitGroup
	if inWorkspace(dir, opts.Env) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			roots, rootsErr = moduleDirs(ctx, goCmd, dir, opts.Env)
		}()
	} else if root := findUp(dir, "go.mod"); root != "" {
		roots = []string{root}
	}
	built, err := compile(ctx, goCmd, dir, logDir, opts.Packages, opts)
	if err == nil && built.aborted() {
		built, err = compileLoadable(ctx, goCmd, dir, logDir, opts)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if rootsErr != nil || len(roots) == 0 {
		// GOPATH mode or no go.mod: the directory itself is the best guess
		// at "the analysed code".
		roots = []string{dir}
	}

	var findings []*found
	for _, pkg := range built.order {
		findings = append(findings, parseText(pkg, built.output[pkg], dir)...)
	}
	diags, err := readLogDir(logDir)
	if err != nil {
		return nil, fmt.Errorf("reading the compiler's escape log: %w", err)
	}
	findings = mergeFlows(findings, diags)

	names := newFuncNamer()
	report := &Report{Dir: dir, Failures: built.failures, Findings: make([]Finding, 0, len(findings))}
	for _, f := range findings {
		if !opts.AllFiles && !underAny(f.File, roots) {
			continue
		}
		if name := names.enclosing(f.File, f.Line, f.Column); name != "" {
			f.Function = name
		}
		f.Hint = hint(f, names.line)
		f.File = relativeTo(dir, f.File)
		for i := range f.Flow {
			for j := range f.Flow[i].Steps {
				s := &f.Flow[i].Steps[j]
				s.File = relativeTo(dir, s.File)
				if s.InlinedFrom != nil {
					s.InlinedFrom.File = relativeTo(dir, s.InlinedFrom.File)
				}
			}
		}
		if f.InlinedFrom != nil {
			f.InlinedFrom.File = relativeTo(dir, f.InlinedFrom.File)
		}
		report.Findings = append(report.Findings, f.Finding)
	}
	sortFindings(report.Findings)
	return report, nil
}

func lookGo(goCmd string) (string, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	path, err := exec.LookPath(goCmd)
	if err != nil {
		return "", ErrNoGo
	}
	return path, nil
}

// buildResult is what one 'go build -json' run said, per package.
type buildResult struct {
	order    []string          // packages in the order their output arrived
	output   map[string]string // the compiler's text, per package
	failures []Failure
}

// buildEvent is one line of 'go build -json' (cmd/go's BuildEvent).
type buildEvent struct {
	ImportPath string
	Action     string
	Output     string
}

// compile runs one 'go build' over all the packages. -json on the go
// command attributes the compiler's text to its package and marks each
// package that failed, and go build carries on with the packages that do
// not depend on a failed one, so one broken package hides nothing else.
// -gcflags without a pattern applies to the named packages only, so
// dependencies come from the build cache; the log directory is new on
// every run, which changes the packages' cache key and so forces the
// compile that produces the diagnostics.
func compile(ctx context.Context, goCmd, dir, logDir string, pkgs []string, opts Options) (*buildResult, error) {
	gcflags := append([]string{"-json=0," + logDir, "-m=2"}, opts.GCFlags...)
	args := []string{"build", "-json", "-o", os.DevNull, "-gcflags=" + strings.Join(gcflags, " ")}
	if len(pkgs) == 0 {
		pkgs = []string{DefaultPackages}
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p, "-") {
			return nil, fmt.Errorf("package pattern %q looks like a flag", p)
		}
	}
	args = append(args, pkgs...)
	var stderr bytes.Buffer
	stdout, events := io.Pipe()
	proc, err := childproc.Start(childproc.Spec{Argv: append([]string{goCmd}, args...), Dir: dir, Env: opts.Env, Stdout: events, Stderr: &stderr})
	if err != nil {
		return nil, fmt.Errorf("running go build: %w", err)
	}
	// The decoder below meets EOF once go build has exited and all it
	// printed has been read.
	go func() {
		<-proc.Exited()
		events.Close()
	}()
	waited := make(chan error, 1)
	go func() { waited <- proc.WaitContext(ctx) }()
	res := &buildResult{output: map[string]string{}}
	texts := map[string]*strings.Builder{}
	failed := map[string]bool{}
	dec := json.NewDecoder(stdout)
	var decodeErr error
	for {
		var ev buildEvent
		if err := dec.Decode(&ev); err != nil {
			if err != io.EOF {
				decodeErr = err
				io.Copy(io.Discard, stdout)
			}
			break
		}
		switch ev.Action {
		case "build-output":
			b := texts[ev.ImportPath]
			if b == nil {
				b = &strings.Builder{}
				texts[ev.ImportPath] = b
				res.order = append(res.order, ev.ImportPath)
			}
			b.WriteString(ev.Output)
		case "build-fail":
			if !failed[ev.ImportPath] {
				failed[ev.ImportPath] = true
				res.failures = append(res.failures, Failure{Package: ev.ImportPath})
			}
		}
	}
	waitErr := <-waited
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for pkg, b := range texts {
		res.output[pkg] = b.String()
	}
	for i := range res.failures {
		res.failures[i].Output = compilerErrors(res.output[res.failures[i].Package])
	}
	if decodeErr != nil {
		return nil, fmt.Errorf("reading go build's output: %w", decodeErr)
	}
	if waitErr != nil && len(res.failures) == 0 {
		// The go command itself gave up (bad flag, broken go.mod): its
		// message is on stderr.
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = waitErr.Error()
		}
		return nil, fmt.Errorf("go build: %s", msg)
	}
	return res, nil
}

// aborted reports whether the go command stopped before compiling
// anything: it does so when a package cannot even be loaded (a missing
// directory or import), and then only the unloadable packages report.
func (b *buildResult) aborted() bool {
	if len(b.failures) == 0 {
		return false
	}
	failed := map[string]bool{}
	for _, f := range b.failures {
		failed[f.Package] = true
	}
	for _, p := range b.order {
		if !failed[p] {
			return false
		}
	}
	return true
}

// listedPackage is what 'go list -e -json' says about one package.
type listedPackage struct {
	ImportPath string
	Error      *listError
	DepsErrors []*listError
}

type listError struct{ Pos, Err string }

func (e *listError) String() string {
	if e.Pos == "" {
		return e.Err
	}
	return e.Pos + ": " + e.Err
}

// compileLoadable is the way round a load error: ask go list which of the
// packages load, report the others with go list's message, and compile the
// rest.
func compileLoadable(ctx context.Context, goCmd, dir, logDir string, opts Options) (*buildResult, error) {
	pkgs := opts.Packages
	if len(pkgs) == 0 {
		pkgs = []string{DefaultPackages}
	}
	var stderr bytes.Buffer
	out, err := childproc.Output(ctx, childproc.Spec{
		Argv: append([]string{goCmd, "list", "-e", "-json=ImportPath,Error,DepsErrors"}, pkgs...),
		Dir:  dir, Env: opts.Env, Stderr: &stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("go list: %s", strings.TrimSpace(stderr.String()))
	}
	var good []string
	var failures []Failure
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list's output: %w", err)
		}
		var msgs []string
		if p.Error != nil {
			msgs = append(msgs, p.Error.String())
		}
		for _, e := range p.DepsErrors {
			msgs = append(msgs, e.String())
		}
		if len(msgs) > 0 {
			failures = append(failures, Failure{Package: p.ImportPath, Output: strings.Join(msgs, "\n")})
			continue
		}
		good = append(good, p.ImportPath)
	}
	res := &buildResult{output: map[string]string{}}
	if len(good) > 0 {
		if err := os.RemoveAll(logDir); err != nil {
			return nil, err
		}
		if err := os.Mkdir(logDir, 0o700); err != nil {
			return nil, err
		}
		if res, err = compile(ctx, goCmd, dir, logDir, good, opts); err != nil {
			return nil, err
		}
	}
	res.failures = append(failures, res.failures...)
	return res, nil
}

// compilerErrors keeps the lines of a failed package's output that are
// not escape-analysis chatter: the compiler's (or go command's) errors.
func compilerErrors(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, "# ") {
			continue
		}
		if _, msg, ok := splitPos(line); ok && isDiagnosticChatter(msg) {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// inWorkspace reports whether the go command will use a go.work file.
func inWorkspace(dir string, env []string) bool {
	gowork := os.Getenv("GOWORK")
	if env != nil {
		gowork = ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "GOWORK="); ok {
				gowork = v
			}
		}
	}
	switch gowork {
	case "off":
		return false
	case "":
		return findUp(dir, "go.work") != ""
	}
	return true
}

// findUp returns the directory at or above dir that holds name, or "".
func findUp(dir, name string) string {
	for {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// moduleDirs lists the directories of the main module (or of every module
// in a go.work workspace).
func moduleDirs(ctx context.Context, goCmd, dir string, env []string) ([]string, error) {
	out, err := childproc.Output(ctx, childproc.Spec{Argv: []string{goCmd, "list", "-m", "-f", "{{.Dir}}"}, Dir: dir, Env: env})
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			dirs = append(dirs, line)
		}
	}
	return dirs, nil
}

// underAny reports whether file lies under one of the module roots, and
// not in a vendor directory, which is other people's code.
func underAny(file string, roots []string) bool {
	for _, r := range roots {
		rel, err := filepath.Rel(r, file)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		return !strings.HasPrefix(rel, "vendor"+string(filepath.Separator))
	}
	return false
}

func relativeTo(dir, file string) string {
	if file == "" || !filepath.IsAbs(file) {
		return file
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return file
	}
	return filepath.ToSlash(rel)
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Message < b.Message
	})
}

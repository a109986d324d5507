package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The manual (README.md and docs/*.md) names commands and flags in code
// spans and code blocks; each must exist on the command tree main builds.
func TestDocsNameRealCommandsAndFlags(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "..", "README.md"))
	if len(files) < 10 {
		t.Fatalf("found %d manual pages (%v); the manual lives in README.md and docs/*.md", len(files), files)
	}
	d := newDocChecker()
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		d.checkMarkdown(filepath.ToSlash(strings.TrimPrefix(path, filepath.Join("..", "..")+string(filepath.Separator))), string(raw))
	}
	for _, p := range d.problems {
		t.Error(p)
	}
	// A checker that recognises nothing passes everything: the manual has
	// hundreds of commands and flags, so a few dozen is a floor, not a target.
	t.Logf("checked %d leaklab command lines and %d flags in %d pages", d.invocations, d.flags, len(files))
	if d.invocations < 100 || d.flags < 150 {
		t.Errorf("checked only %d leaklab command lines and %d flags in the manual; the parser has lost track of it", d.invocations, d.flags)
	}
}

// pendingPages are manual pages that other branches are adding; README.md
// and docs/README.md link them ahead of time. Remove a name once its page
// has landed.
var pendingPages = []string{}

// Every relative link in the manual leads to a file that exists, and every
// #anchor to a heading of that file, so pages can move without leaving
// readers at a dead end.
func TestDocsLinksResolve(t *testing.T) {
	top := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(top, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(top, "README.md"))
	links := 0
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := filepath.Rel(top, path)
		for _, m := range markdownLink.FindAllStringSubmatch(string(raw), -1) {
			target, anchor, _ := strings.Cut(m[1], "#")
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			file := path
			if target != "" {
				file = filepath.Join(filepath.Dir(path), filepath.FromSlash(target))
			}
			rel, _ := filepath.Rel(top, file)
			content, err := os.ReadFile(file)
			if err != nil {
				if !slices.Contains(pendingPages, filepath.ToSlash(rel)) {
					t.Errorf("%s links to %s, which does not exist", page, m[1])
				}
				continue
			}
			if anchor != "" && !slices.Contains(headingAnchors(string(content)), anchor) {
				t.Errorf("%s links to %s, but %s has no heading with that anchor", page, m[1], rel)
			}
		}
	}
	if links < 50 {
		t.Errorf("found only %d relative links in the manual; the link parser has lost track of it", links)
	}
}

var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingAnchors gives the anchors GitHub makes of a page's headings:
// lower case, punctuation dropped, spaces turned to hyphens.
func headingAnchors(page string) []string {
	var anchors []string
	inFence := false
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
		}
		m := headingLine.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(line[len(m[0]):])) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors = append(anchors, b.String())
	}
	return anchors
}

// The checker finds what a manual page gets wrong, and leaves other
// programs' command lines alone.
func TestDocsCheckerCatchesWhatDoesNotExist(t *testing.T) {
	for _, tc := range []struct {
		name, page string
		problem    string // "" when the page is right
	}{
		{"real command and flags", "```sh\nleaklab watch http://x --for 1m --every 5s --output json\n```\n", ""},
		{"unknown flag", "```sh\nleaklab watch http://x --fro 1m\n```\n", "watch has no flag --fro"},
		{"unknown shorthand", "Run `leaklab diff A B -x out`.\n", "diff has no flag -x"},
		{"unknown command", "Then `leaklab retain PID`.\n", `leaklab has no command "retain"`},
		{"unknown subcommand", "`leaklab profiles lss`\n", `leaklab profiles has no command "lss"`},
		{"one alternative unknown", "`leaklab profiles ls|show|remove`\n", `leaklab profiles has no command "remove"`},
		{"alternatives", "`leaklab exercise list\\|start\\|hint` | x |\n", ""},
		{"continued line", "```sh\nleaklab load http://x \\\n    --rate 5 --bogus\n```\n", "load has no flag --bogus"},
		{"nested in --cmd", "`leaklab scale --cmd \"./leaklab scale worker x --fast\" --runs 2`\n", "scale worker has no flag --fast"},
		{"flag of the heading's command", "# Watching: `leaklab watch`\n\nIt takes `--min-heap-growth` and `--rate`.\n", "no command named here has a flag --rate"},
		{"flag of the paragraph's command", "# Watching: `leaklab watch`\n\nUnder `leaklab load --rate 20`, and `--rate 5`.\n", ""},
		{"flag of no command", "# Intro\n\nIt takes `--no-such-flag`.\n", "no command has a flag --no-such-flag"},
		{"other programs", "```sh\ncurl --bogus http://x | leaklab-stack --x\ngo run ./cmd/leaklab demo\nwrk -t 2 -c 64\n```\n`go test -run X -fuzz Y`, `-z=2`\n", ""},
		{"go run", "`go run ./cmd/leaklab demo --bogus`\n", "demo has no flag --bogus"},
		{"comment and pipe end the command line", "```sh\nleaklab services # --bogus\nleaklab services | grep --bogus\n```\n", ""},
		{"leaklab as a word of a sentence", "```\nit would let leaklab prove leaks\n  next: leaklab dif A B\n```\n", `leaklab has no command "dif"`},
		{"after an environment assignment", "`X=1 leaklab watch --bogus`\n", "watch has no flag --bogus"},
		{"after --", "`perf record -g -- leaklab load --bogus`\n", "load has no flag --bogus"},
		{"help and version", "`leaklab --version`, `leaklab watch --help`\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDocChecker()
			d.checkMarkdown("page.md", tc.page)
			got := strings.Join(d.problems, "\n")
			if tc.problem == "" && got != "" {
				t.Errorf("problems in a right page:\n%s", got)
			}
			if tc.problem != "" && !strings.Contains(got, tc.problem) {
				t.Errorf("problems %q, want one saying %q", got, tc.problem)
			}
		})
	}
}

// docChecker holds the real command tree and what a walk of the manual found.
type docChecker struct {
	root        *cobra.Command
	problems    []string
	invocations int // leaklab command lines checked
	flags       int // flags checked
}

func newDocChecker() *docChecker {
	root := newRootCmd(&factory{streams: &ioStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}})
	// cobra adds --help and --version when a command runs; add them now,
	// as running would.
	root.InitDefaultVersionFlag()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return &docChecker{root: root}
}

var (
	codeSpan    = regexp.MustCompile("`([^`]+)`")
	headingLine = regexp.MustCompile(`^(#{1,6})\s`)
	commandWord = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	longFlag    = regexp.MustCompile(`^--([a-zA-Z0-9][a-zA-Z0-9-]*)(=.*)?$`)
	shortFlag   = regexp.MustCompile(`^-([a-zA-Z])(=.*)?$`)
)

// checkMarkdown checks one page. In code blocks every leaklab command line
// is checked; in prose every code span that is a leaklab command line, and
// every code span that starts with a flag: that flag must belong to a
// command named in the section's headings or in the same paragraph (or to
// any command when none is named).
func (d *docChecker) checkMarkdown(file, text string) {
	lines := strings.Split(text, "\n")
	headingCmds := map[int][]*cobra.Command{} // by heading level
	var para []string
	paraStart := 0
	flush := func() {
		if len(para) > 0 {
			d.checkProse(file, paraStart, strings.Join(para, "\n"), contextOf(headingCmds))
		}
		para = nil
	}
	inFence, continued, continuedAt := false, "", 0
	for i, line := range lines {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			flush()
			inFence = !inFence
			continued = ""
			continue
		}
		if inFence {
			if continued == "" {
				continuedAt = n
			}
			if body, ok := strings.CutSuffix(trimmed, `\`); ok {
				continued += body + " "
				continue
			}
			d.checkCommandLines(fmt.Sprintf("%s:%d", file, continuedAt), continued+trimmed)
			continued = ""
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		if m := headingLine.FindStringSubmatch(line); m != nil {
			flush()
			level := len(m[1])
			for l := range headingCmds {
				if l >= level {
					delete(headingCmds, l)
				}
			}
			headingCmds[level] = d.checkProse(file, n, line, contextOf(headingCmds))
			continue
		}
		if len(para) == 0 {
			paraStart = n
		}
		para = append(para, line)
	}
	flush()
}

func contextOf(headingCmds map[int][]*cobra.Command) []*cobra.Command {
	var ctx []*cobra.Command
	for _, cmds := range headingCmds {
		ctx = append(ctx, cmds...)
	}
	return ctx
}

// checkProse checks the code spans of a paragraph (or heading) that starts
// at line start, and returns the commands its spans name.
func (d *docChecker) checkProse(file string, start int, text string, context []*cobra.Command) []*cobra.Command {
	type span struct {
		at   string
		text string
	}
	var spans []span
	for _, m := range codeSpan.FindAllStringSubmatchIndex(text, -1) {
		line := start + strings.Count(text[:m[0]], "\n")
		s := strings.ReplaceAll(text[m[2]:m[3]], "\n", " ")
		s = strings.ReplaceAll(s, `\|`, "|") // an escaped pipe in a table cell
		spans = append(spans, span{at: fmt.Sprintf("%s:%d", file, line), text: s})
	}
	var named []*cobra.Command
	for _, s := range spans {
		named = append(named, d.checkCommandLines(s.at, s.text)...)
	}
	context = append(context, named...)
	for _, s := range spans {
		fields := shellFields(s.text)
		if len(fields) == 0 || fields[0].quoted || !isFlag(fields[0].text) {
			continue
		}
		if !strings.HasPrefix(fields[0].text, "--") && strings.Contains(fields[0].text, "=") {
			continue // -m=2 is how compilers spell flags, never how leaklab's are written
		}
		d.checkLoneFlag(s.at, s.text, fields[0].text, context)
	}
	return named
}

// checkLoneFlag checks a flag named on its own, like `--for D`.
func (d *docChecker) checkLoneFlag(at, span, flag string, context []*cobra.Command) {
	d.flags++
	candidates := context
	where := "no command named here has"
	if len(candidates) == 0 {
		candidates, where = []*cobra.Command{d.root}, "no command has"
	}
	for _, c := range candidates {
		found := false
		walkCommands(c, func(sub *cobra.Command) {
			found = found || hasFlag(sub, flag)
		})
		if found {
			return
		}
	}
	var names []string
	for _, c := range context {
		if !slices.Contains(names, c.CommandPath()) {
			names = append(names, c.CommandPath())
		}
	}
	d.problems = append(d.problems, fmt.Sprintf("%s: `%s`: %s a flag %s (commands named here: %s)", at, span, where, flag, strings.Join(names, ", ")))
}

// checkCommandLines checks every leaklab command line in one line of shell
// (or one code span) and returns the commands they name.
func (d *docChecker) checkCommandLines(at, line string) []*cobra.Command {
	fields := shellFields(line)
	var named []*cobra.Command
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if f.quoted {
			if strings.Contains(f.text, "leaklab") {
				named = append(named, d.checkCommandLines(at, f.text)...)
			}
			continue
		}
		if !startsLeaklab(fields, i) {
			continue
		}
		d.invocations++
		cmds, next := d.resolve(at, line, fields, i+1)
		named = append(named, cmds...)
		for ; next < len(fields) && !endsCommandLine(fields[next]); next++ {
			g := fields[next]
			if g.quoted {
				if strings.Contains(g.text, "leaklab") {
					named = append(named, d.checkCommandLines(at, g.text)...)
				}
				continue
			}
			if g.text == "--" {
				break // the rest are arguments
			}
			flag := strings.Trim(g.text, "[](),")
			if !isFlag(flag) || len(cmds) == 0 {
				continue
			}
			d.flags++
			if !slices.ContainsFunc(cmds, func(c *cobra.Command) bool { return hasFlag(c, flag) }) {
				d.problems = append(d.problems, fmt.Sprintf("%s: `%s`: %s has no flag %s", at, line, pathsOf(cmds), flagName(flag)))
			}
		}
		i = next
	}
	return named
}

// resolve follows subcommand names from fields[from]; it returns the
// commands named (several for `ls|show`) and where their arguments start.
func (d *docChecker) resolve(at, line string, fields []shellField, from int) ([]*cobra.Command, int) {
	cmd := d.root
	i := from
	for ; i < len(fields) && !fields[i].quoted && !endsCommandLine(fields[i]); i++ {
		word := fields[i].text
		if sub := findSub(cmd, word); sub != nil {
			cmd = sub
			continue
		}
		if alts := strings.Split(word, "|"); len(alts) > 1 && commandWord.MatchString(alts[0]) && findSub(cmd, alts[0]) != nil {
			var cmds []*cobra.Command
			for _, alt := range alts {
				if sub := findSub(cmd, alt); sub != nil {
					cmds = append(cmds, sub)
				} else {
					d.problems = append(d.problems, fmt.Sprintf("%s: `%s`: %s has no command %q", at, line, cmd.CommandPath(), alt))
				}
			}
			return cmds, i + 1
		}
		// A word where only a subcommand can stand: the root and commands
		// that only group others take no arguments.
		if commandWord.MatchString(word) && cmd.HasSubCommands() && (cmd == d.root || !cmd.Runnable()) {
			d.problems = append(d.problems, fmt.Sprintf("%s: `%s`: %s has no command %q", at, line, cmd.CommandPath(), word))
			return nil, i + 1
		}
		break
	}
	return []*cobra.Command{cmd}, i
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || slices.Contains(sub.Aliases, name) {
			return sub
		}
	}
	return nil
}

func walkCommands(c *cobra.Command, visit func(*cobra.Command)) {
	visit(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, visit)
	}
}

// hasFlag says whether c accepts flag (--name, --name=v, -x or -x=v),
// its own or inherited.
func hasFlag(c *cobra.Command, flag string) bool {
	sets := []*pflag.FlagSet{c.Flags(), c.PersistentFlags(), c.InheritedFlags()}
	if m := longFlag.FindStringSubmatch(flag); m != nil {
		return slices.ContainsFunc(sets, func(s *pflag.FlagSet) bool { return s.Lookup(m[1]) != nil })
	}
	if m := shortFlag.FindStringSubmatch(flag); m != nil {
		return slices.ContainsFunc(sets, func(s *pflag.FlagSet) bool { return s.ShorthandLookup(m[1]) != nil })
	}
	return false
}

func isFlag(s string) bool { return longFlag.MatchString(s) || shortFlag.MatchString(s) }

func flagName(flag string) string { name, _, _ := strings.Cut(flag, "="); return name }

func pathsOf(cmds []*cobra.Command) string {
	var paths []string
	for _, c := range cmds {
		paths = append(paths, strings.TrimPrefix(c.CommandPath(), "leaklab "))
	}
	return strings.Join(paths, "|")
}

// startsLeaklab says whether fields[i] runs leaklab: `leaklab` or
// `./leaklab` where a shell expects a command, or `go run ./cmd/leaklab`.
func startsLeaklab(fields []shellField, i int) bool {
	switch fields[i].text {
	case "leaklab", "./leaklab":
		return commandPosition(fields, i)
	case "./cmd/leaklab":
		return i > 0 && fields[i-1].text == "run"
	}
	return false
}

var envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// commandPosition says whether fields[i] stands where a shell runs a
// command: first, after an operator, `--`, an environment assignment or a
// wrapper (env, exec, time, sudo), or after a label in a report (`next:`).
// Elsewhere "leaklab" is a word of a sentence ("it would let leaklab prove").
func commandPosition(fields []shellField, i int) bool {
	if i == 0 {
		return true
	}
	prev := fields[i-1]
	if prev.quoted && !envAssignment.MatchString(prev.text) {
		return false
	}
	switch prev.text {
	case "--", "$", "env", "exec", "time", "sudo":
		return true
	}
	return endsCommandLine(prev) || envAssignment.MatchString(prev.text) || strings.HasSuffix(prev.text, ":")
}

// endsCommandLine says whether f ends a shell command: a pipe, a list
// operator, a redirection or a comment.
func endsCommandLine(f shellField) bool {
	if f.quoted {
		return false
	}
	switch f.text {
	case "|", "||", "&&", ";", "&":
		return true
	}
	return strings.HasPrefix(f.text, "#") || strings.HasPrefix(f.text, ">") || strings.HasPrefix(f.text, "2>") || strings.HasPrefix(f.text, "<")
}

// shellField is one word of a shell line; quoted when it began with a quote.
type shellField struct {
	text   string
	quoted bool
}

// shellFields splits a line into words as a shell would, roughly: quotes
// group, a backslash escapes the next character outside single quotes.
func shellFields(line string) []shellField {
	var fields []shellField
	var cur strings.Builder
	inWord, quoted := false, false
	var quote rune
	for i, r := range []rune(line) {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			if !inWord {
				quoted = true
			}
			inWord, quote = true, r
		case r == '\\' && i+1 < len([]rune(line)):
			inWord = true
			cur.WriteRune(r)
		case r == ' ' || r == '\t':
			if inWord {
				fields = append(fields, shellField{text: cur.String(), quoted: quoted})
				cur.Reset()
			}
			inWord, quoted = false, false
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	if inWord {
		fields = append(fields, shellField{text: cur.String(), quoted: quoted})
	}
	return fields
}

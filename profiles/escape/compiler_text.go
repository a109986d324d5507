package escape

import (
	"path/filepath"
	"strconv"
	"strings"
)

// found is a finding while it is being assembled: the parts of the
// compiler's message that joining the text with the log needs.
type found struct {
	Finding
	subject string // the value the message is about ("t", "make([]byte, n)", "p")
	// For leaking params: "to result ~r0 level=0" gives resultTo and
	// level; "leaking param content" sets content.
	resultTo string
	level    int
	content  bool
	merged   map[string]bool // log diagnostics already joined, so duplicates are not
}

// parseText turns one package's -m=2 text into findings. The explanation
// blocks are skipped (the log carries them with better positions) except
// for their headers, which name the function the compiler was analysing:
// a fallback for when the source cannot be read.
func parseText(pkg, out, dir string) []*found {
	var fs []*found
	var rawKeys []string
	headerFuncs := map[string]string{} // position + subject → function
	for len(out) > 0 {
		var line string
		if i := strings.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			line, out = out, ""
		}
		pos, msg, ok := splitPos(line)
		if !ok || strings.HasPrefix(msg, " ") {
			continue
		}
		if strings.HasSuffix(msg, ":") {
			if subject, fn, ok := parseHeader(msg); ok {
				headerFuncs[pos.String()+"|"+subject] = fn
			}
			continue
		}
		kind, subject := classify(msg)
		if kind == "" {
			continue
		}
		rawPos := pos.String()
		if !filepath.IsAbs(pos.File) {
			pos.File = filepath.Join(dir, pos.File)
		}
		f := &found{Finding: Finding{File: pos.File, Line: pos.Line, Column: pos.Column, Package: pkg, Kind: kind, Message: msg, Flow: []Flow{}}, subject: subject}
		if kind == KindLeakingParam {
			f.content = strings.HasPrefix(msg, "leaking param content: ")
			if i := strings.Index(subject, " to result "); i >= 0 {
				rest := subject[i+len(" to result "):]
				f.subject = subject[:i]
				to, level, _ := strings.Cut(rest, " level=")
				f.resultTo = to
				f.level, _ = strconv.Atoi(level)
			}
		}
		fs = append(fs, f)
		rawKeys = append(rawKeys, rawPos+"|"+f.subject)
	}
	for i, f := range fs {
		if fn, ok := headerFuncs[rawKeys[i]]; ok {
			f.Function = fn
		}
	}
	return fs
}

// classify names the kind of a final -m line and the value it is about.
func classify(msg string) (Kind, string) {
	switch {
	case strings.HasPrefix(msg, "moved to heap: "):
		return KindMovedToHeap, strings.TrimPrefix(msg, "moved to heap: ")
	case strings.HasSuffix(msg, " escapes to heap"):
		return KindEscapes, strings.TrimSuffix(msg, " escapes to heap")
	case strings.HasPrefix(msg, "leaking param content: "):
		return KindLeakingParam, strings.TrimPrefix(msg, "leaking param content: ")
	case strings.HasPrefix(msg, "leaking param: "):
		return KindLeakingParam, strings.TrimPrefix(msg, "leaking param: ")
	case strings.HasPrefix(msg, "leaking closure reference "):
		return KindLeakingParam, strings.TrimPrefix(msg, "leaking closure reference ")
	case strings.HasSuffix(msg, " does not escape"):
		return KindDoesNotEscape, strings.TrimSuffix(msg, " does not escape")
	}
	return "", ""
}

// parseHeader reads the first line of an -m=2 explanation block:
// "t escapes to heap in NewT:" or
// "parameter p leaks to ~r0 for Leak with derefs=0:".
func parseHeader(msg string) (subject, fn string, ok bool) {
	msg = strings.TrimSuffix(msg, ":")
	if i := strings.LastIndex(msg, " escapes to heap in "); i >= 0 {
		return msg[:i], msg[i+len(" escapes to heap in "):], true
	}
	if rest, found := strings.CutPrefix(msg, "parameter "); found {
		p, rest, found := strings.Cut(rest, " leaks to ")
		if !found {
			return "", "", false
		}
		i := strings.LastIndex(rest, " with derefs=")
		j := strings.LastIndex(rest[:max(i, 0)], " for ")
		if i < 0 || j < 0 {
			return "", "", false
		}
		return p, rest[j+len(" for ") : i], true
	}
	return "", "", false
}

// isDiagnosticChatter reports whether an -m line is optimisation
// information rather than a compile error.
func isDiagnosticChatter(msg string) bool {
	if k, _ := classify(msg); k != "" {
		return true
	}
	if strings.HasPrefix(msg, " ") || strings.HasSuffix(msg, ":") && strings.Contains(msg, " escapes to heap in ") {
		return true
	}
	for _, p := range []string{"can inline ", "cannot inline ", "inlining call to ", "devirtualizing ", "parameter "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return strings.Contains(msg, " capturing by ") || strings.Contains(msg, " ignoring self-assignment ")
}

// splitPos splits "file:line:col: message".
func splitPos(line string) (Position, string, bool) {
	i := strings.Index(line, ": ")
	if i < 0 {
		return Position{}, "", false
	}
	head, msg := line[:i], line[i+2:]
	head, col, ok := cutNumber(head)
	if !ok {
		return Position{}, "", false
	}
	file, ln, ok := cutNumber(head)
	if !ok {
		return Position{}, "", false
	}
	return Position{File: file, Line: ln, Column: col}, msg, true
}

// cutNumber splits "rest:N" into rest and N.
func cutNumber(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	return s[:i], n, err == nil
}

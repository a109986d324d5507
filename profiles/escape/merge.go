package escape

import (
	"strconv"
	"strings"
)

// dedupe drops repeated findings: the compiler reports a generic
// function's escapes once per instantiation, and in every package that
// instantiates it.
func dedupe(fs []*found) []*found {
	type key struct {
		pos  Position
		kind Kind
		msg  string
	}
	seen := make(map[key]bool, len(fs))
	out := fs[:0]
	for _, f := range fs {
		k := key{f.Position(), f.Kind, f.Message}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}

// mergeFlows joins the log's explanations to the text's findings by
// position and subject. The text's final lines are the compiler's
// verdicts; a log diagnostic with no verdict (the compiler explains some
// flows of generic shape functions it then reports elsewhere) is left out.
func mergeFlows(fs []*found, diags []logDiag) []*found {
	fs = dedupe(fs)
	byPos := make(map[Position][]*found, len(fs))
	for _, f := range fs {
		byPos[f.Position()] = append(byPos[f.Position()], f)
	}
	for i := range diags {
		d := &diags[i]
		target := pickTarget(byPos[d.pos], d)
		if target == nil {
			continue
		}
		key := d.message + "\x00" + flowKey(d.flows)
		if target.merged[key] {
			continue
		}
		if target.merged == nil {
			target.merged = map[string]bool{}
		}
		target.merged[key] = true
		target.Flow = append(target.Flow, d.flows...)
		if target.InlinedFrom == nil {
			target.InlinedFrom = d.inlinedFrom
		}
	}
	return fs
}

func flowKey(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// pickTarget finds the text finding a log diagnostic explains. The two
// word things differently: the log's "t escapes to heap" is the text's
// "moved to heap: t", its "append(s, x...) escapes to heap" the text's
// "append escapes to heap", and its "parameter p leaks to ~r0 with
// derefs=0" the text's "leaking param: p to result ~r0 level=0".
func pickTarget(cands []*found, d *logDiag) *found {
	if strings.HasPrefix(d.code, "leak") {
		p, to, derefs, ok := parseLeak(d.message)
		if !ok {
			return nil
		}
		var plain, content, any *found
		for _, c := range cands {
			if c.Kind != KindLeakingParam || c.subject != p {
				continue
			}
			if c.resultTo != "" {
				if c.resultTo == to && c.level == derefs {
					return c
				}
				any = c
				continue
			}
			if c.content {
				content = c
			} else {
				plain = c
			}
		}
		switch {
		case derefs > 0 && content != nil:
			return content
		case plain != nil:
			return plain
		case content != nil:
			return content
		}
		return any
	}
	subject := strings.TrimSuffix(d.message, " escapes to heap")
	var prefixed *found
	for _, c := range cands {
		if !c.Kind.Heap() {
			continue
		}
		if c.subject == subject {
			return c
		}
		if strings.HasPrefix(subject, c.subject+"(") {
			prefixed = c
		}
	}
	return prefixed
}

// parseLeak reads "parameter p leaks to ~r0 with derefs=0".
func parseLeak(msg string) (param, to string, derefs int, ok bool) {
	rest, ok := strings.CutPrefix(msg, "parameter ")
	if !ok {
		return "", "", 0, false
	}
	param, rest, ok = strings.Cut(rest, " leaks to ")
	if !ok {
		return "", "", 0, false
	}
	to, n, ok := strings.Cut(rest, " with derefs=")
	if !ok {
		return "", "", 0, false
	}
	derefs, err := strconv.Atoi(n)
	return param, to, derefs, err == nil
}

package escape

import (
	"strings"
)

// hint says in plain words why the compiler decided as it did and what
// usually fixes it, read from the message and the flow's reasons. It is
// empty when no common cause is recognised; the flow still says why.
func hint(f *found, sourceLine func(file string, line int) string) string {
	has := func(pred func(Flow, Step) bool) bool {
		for _, fl := range f.Flow {
			for _, s := range fl.Steps {
				if pred(fl, s) {
					return true
				}
			}
		}
		return false
	}
	reason := func(r string) bool { return has(func(_ Flow, s Step) bool { return s.Reason == r }) }
	// The flow of a go statement's arguments does not say "go"; the source
	// line does.
	goStatement := has(func(_ Flow, s Step) bool {
		return s.File != "" && strings.HasPrefix(strings.TrimSpace(sourceLine(s.File, s.Line)), "go ")
	})
	switch f.Kind {
	case KindDoesNotEscape:
		if strings.HasPrefix(f.subject, "make(") && !constantMake(f.subject) {
			return "size known only at run time: it stays on the stack only while it fits the compiler's 32-byte buffer; " +
				"larger ones are allocated on the heap at run time even though this says \"does not escape\". " +
				"A fixed-size array sliced to length, or a reused buffer, avoids that."
		}
		return ""
	case KindLeakingParam:
		switch {
		case strings.Contains(f.Message, "to result"):
			return "the pointer is returned, so whether the caller's argument escapes depends on what the caller does with the result."
		case f.content:
			return "what the parameter points to (not the parameter itself) is kept beyond the call, so callers' data behind it is allocated on the heap."
		}
		return "the pointer is stored where it outlives the call, so every caller's argument for it is allocated on the heap."
	}
	if f.subject == "append" || strings.HasPrefix(f.subject, "append(") {
		return "append's growth path: when the slice is full, the new backing array is allocated on the heap. " +
			"Give it the capacity it needs up front (make with a capacity) or reuse the buffer, and this never runs."
	}
	switch {
	case reason("too large for stack"):
		return "too large for the stack (over 10 MB declared, or 64 KB implicit): allocate it once and reuse it."
	case reason("non-constant size"):
		return "its size is known only at run time: use a fixed-size array sliced to length, or reuse a buffer."
	case has(func(_ Flow, s Step) bool {
		return s.Reason == "call parameter" && (strings.HasPrefix(s.Expr, "fmt.") || strings.Contains(s.Expr, ".Printf(") || strings.Contains(s.Expr, ".Sprintf("))
	}):
		return "passed to fmt as ...any: fmt's arguments outlive what escape analysis can follow, so each is boxed on the heap. " +
			"On hot paths format with strconv.Append* into a reused buffer."
	case goStatement:
		return "shared with a goroutine, which may outlive this frame, so it is allocated on the heap (and so are the go statement's arguments). " +
			"Pass values over a channel to a long-lived worker instead of pointers to locals."
	case reason("captured by a closure") && !strings.HasPrefix(f.subject, "func literal"):
		return "captured by reference by a closure that outlives the call, so it lives with the closure on the heap. " +
			"Pass it as an argument, or keep the state in a struct the caller owns."
	case strings.HasPrefix(f.subject, "func literal"):
		return "the closure outlives the call (returned, stored, or run as a goroutine), so it and what it captures are allocated. " +
			"A method on a struct, or a closure that is only called, stays on the stack."
	case reason("interface-converted") || reason("slice-literal-element") && has(func(fl Flow, _ Step) bool { return strings.Contains(fl.To, "...") }):
		return "converted to an interface that outlives the call: the interface points at a heap copy. Keep the concrete type where you can."
	case reason("address-of") && reason("return"):
		return "its address is returned, so it must outlive the call: return the value itself, or let the caller pass the destination."
	case reason("spill") && has(func(fl Flow, _ Step) bool { return strings.Contains(fl.From, "{storage for") }) && has(func(fl Flow, _ Step) bool { return strings.HasPrefix(fl.To, "~r") }):
		return "it is returned (as an interface or slice backing array), so it is allocated where the caller can keep it."
	case isBoxedValue(f):
		return "a copy of the value is boxed (as an interface, which holds a pointer to its data) and the box is kept on the heap. " +
			"Keep the concrete type where you can (a []T rather than []any, a typed field rather than any)."
	case has(func(fl Flow, _ Step) bool { return fl.To == "{heap}" }):
		return "it is stored somewhere that is already on the heap (a global, a field of a heap object, a parameter that leaks), so it must be there too."
	}
	return ""
}

// constantMake reports whether a make(...) expression's size arguments are
// all integer literals.
func constantMake(expr string) bool {
	inner := strings.TrimSuffix(strings.TrimPrefix(expr, "make("), ")")
	parts := strings.Split(inner, ", ")
	if len(parts) < 2 {
		return true
	}
	for _, p := range parts[1:] {
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// isBoxedValue reports whether an escape is of a plain value (a variable
// or field, not an allocation expression) whose storage the compiler had to
// create: the mark of a conversion to an interface.
func isBoxedValue(f *found) bool {
	if f.Kind != KindEscapes || len(f.Flow) == 0 || strings.ContainsAny(f.subject, "(){}[]&* ") {
		return false
	}
	return f.Flow[0].From == "&{storage for "+f.subject+"}"
}

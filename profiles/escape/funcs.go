package escape

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
)

// funcNamer finds the function enclosing a source position by parsing the
// file, so every finding is named the same way whatever the compiler was
// analysing when it reported it (inlining moves reports between
// functions), and in the form pprof uses: F, T.M, (*T).M, F.func1,
// F.func1.1 for a closure inside a closure.
type funcNamer struct {
	fset  *token.FileSet
	files map[string]*fileFuncs
}

type fileFuncs struct {
	tf    *token.File
	src   []byte
	spans []funcSpan
}

type funcSpan struct {
	pos, end token.Pos
	name     string
}

func newFuncNamer() *funcNamer {
	return &funcNamer{fset: token.NewFileSet(), files: map[string]*fileFuncs{}}
}

// enclosing returns the innermost function containing line:col of file,
// or "" when the file cannot be read.
func (n *funcNamer) enclosing(file string, line, col int) string {
	ff, ok := n.files[file]
	if !ok {
		ff = n.parse(file)
		n.files[file] = ff
	}
	if ff == nil || line < 1 || line > ff.tf.LineCount() {
		return ""
	}
	pos := ff.tf.LineStart(line) + token.Pos(col-1)
	best := ""
	var bestSize token.Pos = -1
	for _, s := range ff.spans {
		if s.pos <= pos && pos < s.end && (bestSize < 0 || s.end-s.pos < bestSize) {
			best, bestSize = s.name, s.end-s.pos
		}
	}
	if best == "" {
		// Package-level variable initialisers run in the package's init.
		return "init"
	}
	return best
}

// line returns the text of one source line, or "".
func (n *funcNamer) line(file string, line int) string {
	ff, ok := n.files[file]
	if !ok {
		ff = n.parse(file)
		n.files[file] = ff
	}
	if ff == nil || line < 1 || line > ff.tf.LineCount() {
		return ""
	}
	start := ff.tf.Offset(ff.tf.LineStart(line))
	end := len(ff.src)
	if line < ff.tf.LineCount() {
		end = ff.tf.Offset(ff.tf.LineStart(line + 1))
	}
	return string(ff.src[start:end])
}

func (n *funcNamer) parse(file string) *fileFuncs {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	af, err := parser.ParseFile(n.fset, file, src, parser.SkipObjectResolution)
	if af == nil || err != nil && af.Decls == nil {
		return nil
	}
	ff := &fileFuncs{tf: n.fset.File(af.Pos()), src: src}
	globalClosures := 0
	for _, decl := range af.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			name := funcDeclName(d)
			ff.spans = append(ff.spans, funcSpan{d.Pos(), d.End(), name})
			if d.Body != nil {
				ff.addClosures(d.Body, name)
			}
		case *ast.GenDecl:
			// Closures in package-level initialisers: the compiler calls
			// them glob..func1, glob..func2, ...
			ast.Inspect(d, func(node ast.Node) bool {
				lit, ok := node.(*ast.FuncLit)
				if !ok {
					return true
				}
				globalClosures++
				name := fmt.Sprintf("glob..func%d", globalClosures)
				ff.spans = append(ff.spans, funcSpan{lit.Pos(), lit.End(), name})
				ff.addClosures(lit.Body, name)
				return false
			})
		}
	}
	return ff
}

// addClosures names the function literals directly inside body in source
// order (outer.func1, outer.func2 at the top level; outer.func1.1 nested),
// as the compiler does.
func (ff *fileFuncs) addClosures(body ast.Node, outer string) {
	count := 0
	ast.Inspect(body, func(node ast.Node) bool {
		lit, ok := node.(*ast.FuncLit)
		if !ok {
			return true
		}
		count++
		var name string
		if isTopLevelName(outer) {
			name = fmt.Sprintf("%s.func%d", outer, count)
		} else {
			name = fmt.Sprintf("%s.%d", outer, count)
		}
		ff.spans = append(ff.spans, funcSpan{lit.Pos(), lit.End(), name})
		ff.addClosures(lit.Body, name)
		return false
	})
}

// isTopLevelName reports whether name is a declared function or method
// rather than a closure (whose names end in .funcN or .N).
func isTopLevelName(name string) bool {
	for i := len(name) - 1; i >= 0; i-- {
		c := name[i]
		if c >= '0' && c <= '9' {
			continue
		}
		return c != '.' && !(i >= 4 && name[i-3:i+1] == "func" && name[i-4] == '.')
	}
	return true
}

func funcDeclName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	star := false
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = true, s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	recv := "?"
	if id, ok := t.(*ast.Ident); ok {
		recv = id.Name
	}
	if star {
		return "(*" + recv + ")." + d.Name.Name
	}
	return recv + "." + d.Name.Name
}

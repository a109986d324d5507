package leaks

import (
	"bytes"
	"embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"strings"
)

// sources are the catalog's own files, so that 'leaklab exercise solution'
// can show the culprit's code from any installed binary.
//
//go:embed *.go
var sources embed.FS

// CulpritSource returns the file name and source code of the culprit
// function of a service (a fully qualified name in this package).
func CulpritSource(culprit string) (file, code string, err error) {
	recv, name := splitFuncName(strings.TrimPrefix(culprit, pkgPath+"."))
	entries, err := fs.ReadDir(sources, ".")
	if err != nil {
		return "", "", err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		src, err := sources.ReadFile(e.Name())
		if err != nil {
			return "", "", err
		}
		f, err := parser.ParseFile(fset, e.Name(), src, parser.ParseComments)
		if err != nil {
			return "", "", err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name != name || receiverName(fd) != recv {
				continue
			}
			var b bytes.Buffer
			if fd.Doc != nil {
				for _, c := range fd.Doc.List {
					b.WriteString(c.Text + "\n")
				}
				fd.Doc = nil
			}
			if err := printer.Fprint(&b, fset, fd); err != nil {
				return "", "", err
			}
			return "leaks/" + e.Name(), b.String(), nil
		}
	}
	return "", "", fmt.Errorf("no source for %s", culprit)
}

// splitFuncName splits "(*T).m" into "T", "m" and "f" into "", "f".
func splitFuncName(s string) (recv, name string) {
	if i := strings.LastIndex(s, ")."); i >= 0 {
		return strings.Trim(s[:i], "(*"), s[i+2:]
	}
	if r, n, ok := strings.Cut(s, "."); ok {
		return r, n
	}
	return "", s
}

func receiverName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	t := fd.Recv.List[0].Type
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

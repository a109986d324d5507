package escape

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// logDiag is one escape or leak diagnostic from the compiler's structured
// log (-json=0,DIR): an LSP-style diagnostic whose relatedInformation
// carries the flow explanation, each entry followed by "inlineLoc" entries
// when it sits in inlined code.
type logDiag struct {
	pos         Position
	code        string
	message     string
	inlinedFrom *Position
	flows       []Flow
}

// The log's wire format (cmd/compile/internal/logopt).
type (
	lspPosition struct {
		Line      int `json:"line"`
		Character int `json:"character"`
	}
	lspRange struct {
		Start lspPosition `json:"start"`
	}
	lspDiagnostic struct {
		Range              lspRange `json:"range"`
		Code               string   `json:"code"`
		Message            string   `json:"message"`
		RelatedInformation []struct {
			Location struct {
				URI   string   `json:"uri"`
				Range lspRange `json:"range"`
			} `json:"location"`
			Message string `json:"message"`
		} `json:"relatedInformation"`
	}
	logHeader struct {
		Version int    `json:"version"`
		File    string `json:"file"`
	}
)

// maxLogLine bounds one line of the log; a flow explanation of a large
// function is a few hundred KB.
const maxLogLine = 64 << 20

// readLogDir reads every log file the compiler wrote under dir: one
// directory per package, one file per source file.
func readLogDir(dir string) ([]logDiag, error) {
	var diags []logDiag
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		ds, err := readLogFile(path)
		diags = append(diags, ds...)
		return err
	})
	return diags, err
}

var (
	escapeCode = []byte(`"code":"escape`) // "escape" and "escapes"
	leakCode   = []byte(`"code":"leak"`)
	versionKey = []byte(`{"version":`)
)

func readLogFile(path string) ([]logDiag, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var diags []logDiag
	var file string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLogLine)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, versionKey) {
			var h logHeader
			if err := json.Unmarshal(line, &h); err != nil {
				return nil, err
			}
			file = h.File
			continue
		}
		// Most of the log is inlining decisions; only escape and leak
		// diagnostics are decoded.
		if !bytes.Contains(line, escapeCode) && !bytes.Contains(line, leakCode) {
			continue
		}
		var d lspDiagnostic
		if err := json.Unmarshal(line, &d); err != nil {
			return nil, err
		}
		if d.Message == "" {
			continue // the log repeats each escape with an empty message
		}
		ld := logDiag{
			pos:     Position{File: file, Line: d.Range.Start.Line, Column: d.Range.Start.Character},
			code:    d.Code,
			message: d.Message,
		}
		// inlineLoc entries annotate what precedes them: the diagnostic
		// itself before the first flow line, else the last step. Several in
		// a row walk inwards, so the last one is the innermost.
		lastStep := -1
		leading := true
		for _, ri := range d.RelatedInformation {
			pos := Position{File: uriPath(ri.Location.URI), Line: ri.Location.Range.Start.Line, Column: ri.Location.Range.Start.Character}
			if ri.Message == "inlineLoc" {
				p := pos
				switch {
				case leading:
					ld.inlinedFrom = &p
				case lastStep >= 0 && len(ld.flows) > 0:
					ld.flows[len(ld.flows)-1].Steps[lastStep].InlinedFrom = &p
				}
				continue
			}
			leading = false
			msg := strings.TrimSpace(strings.TrimPrefix(ri.Message, "escflow:"))
			if rest, ok := strings.CutPrefix(msg, "flow: "); ok {
				to, from, _ := strings.Cut(strings.TrimSuffix(rest, ":"), " ← ")
				ld.flows = append(ld.flows, Flow{To: to, From: from, Steps: []Step{}})
				lastStep = -1
				continue
			}
			if rest, ok := strings.CutPrefix(msg, "from "); ok {
				if len(ld.flows) == 0 {
					ld.flows = append(ld.flows, Flow{Steps: []Step{}})
				}
				fl := &ld.flows[len(ld.flows)-1]
				expr, reason := splitReason(rest)
				fl.Steps = append(fl.Steps, Step{Expr: expr, Reason: reason, Position: pos})
				lastStep = len(fl.Steps) - 1
			}
		}
		diags = append(diags, ld)
	}
	return diags, sc.Err()
}

// splitReason splits "return &t (return)" into the expression and the
// compiler's reason; the reason is the last parenthesised group.
func splitReason(s string) (expr, reason string) {
	if strings.HasSuffix(s, ")") {
		if i := strings.LastIndex(s, " ("); i >= 0 {
			return s[:i], s[i+2 : len(s)-1]
		}
	}
	return s, ""
}

func uriPath(uri string) string {
	p, ok := strings.CutPrefix(uri, "file://")
	if !ok || p == "__unnamed__" {
		return ""
	}
	if strings.Contains(p, "%") {
		if u, err := url.PathUnescape(p); err == nil {
			return u
		}
	}
	return p
}

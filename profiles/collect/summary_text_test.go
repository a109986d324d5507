package collect

import (
	"strings"
	"testing"
)

func TestSummaryText(t *testing.T) {
	t.Parallel()
	s := Summary{Seconds: 61.4, Captures: 12, Failures: 1, Bytes: 3 << 20, Pushes: 2, Pruned: 4,
		Targets: []TargetSummary{
			{Target: "http://127.0.0.1:8080", Service: "shop", Captures: 12, Failures: 1, Bytes: 3 << 20, LastError: "connection refused"},
			{Target: "http://127.0.0.1:8081", Captures: 0},
		}}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"collected for 1m1s: 12 captures, 1 failures, 3 MiB stored; 2 pushes accepted, 0 rejected; 4 pruned by retention",
		"  http://127.0.0.1:8080               12 captures     1 failures      3 MiB  shop  last error: connection refused",
		"  http://127.0.0.1:8081                0 captures     0 failures        0 B",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("summary text:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
}

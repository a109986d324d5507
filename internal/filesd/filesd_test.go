package filesd

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteThenParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "targets.json")
	want := []Group{{Targets: []string{"127.0.0.1:9101"}, Labels: map[string]string{"service": "unbounded-cache"}}}
	if err := WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(%s) = %v, %v; want %v", data, got, err, want)
	}
	// Prometheus reads an empty target list as "scrape nothing"; null it refuses.
	if data, err := Marshal(nil); err != nil || string(data) != "[]\n" {
		t.Errorf("Marshal(nil) = %q, %v; want []", data, err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Group // nil with wantErr
		wantErr  string
	}{
		{"yaml", "- targets: ['a:1']\n  labels:\n    job: shop\n", []Group{{Targets: []string{"a:1"}, Labels: map[string]string{"job": "shop"}}}, ""},
		{"yaml comments only", "# no targets yet\n", nil, ""},
		{"yaml unknown field", "- target: ['a:1']\n", nil, "not file_sd YAML"},
		{"yaml duplicate key", "- targets: ['a:1']\n  targets: ['b:1']\n", nil, "not file_sd YAML"},
		{"json unknown field", `[{"target": ["a:1"]}]`, nil, "not file_sd JSON"},
		{"empty", " \n", nil, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse: %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

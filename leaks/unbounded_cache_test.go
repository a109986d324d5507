package leaks_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
)

// TestProductPageEscapesID checks that the product ID from the query string
// is HTML-escaped in the text/html page, in both variants.
func TestProductPageEscapesID(t *testing.T) {
	svc, err := leaks.Lookup("unbounded-cache")
	if err != nil {
		t.Fatal(err)
	}
	for _, fixed := range []bool{false, true} {
		t.Run(string(leaks.VariantOf(fixed)), func(t *testing.T) {
			srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0", Fixed: fixed})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			id := `<script>alert("x")</script>`
			for range 2 { // rendered, then cached
				body := string(get(t, srv.URL()+"/product?id="+url.QueryEscape(id)))
				if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
					t.Errorf("page for id %q = %q, want the id HTML-escaped", id, body)
				}
			}
		})
	}
}

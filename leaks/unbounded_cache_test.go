package leaks_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
)

// TestProductPageEscapesID checks that the product ID from the query string
// is HTML-escaped in the text/html page, in both variants.
func TestProductPageEscapesID(t *testing.T) {
	inBothVariants(t, "unbounded-cache", func(t *testing.T, _ *leaks.Service, base string) {
		id := `<script>alert("x")</script>`
		for range 2 { // rendered, then cached
			body := string(get(t, base+"/product?id="+url.QueryEscape(id)))
			if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
				t.Errorf("page for id %q = %q, want the id HTML-escaped", id, body)
			}
		}
	})
}

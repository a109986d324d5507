package scale

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// exchangeWith writes nothing useful but reads resp as the server's answer
// over a real in-memory connection, so the parser sees the bytes as a
// server would send them.
func exchangeWith(t *testing.T, resp string, head bool) (status int, keep bool, rest string, err error) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		br := bufio.NewReader(server)
		if _, err := br.ReadString('\n'); err != nil { // the request line is enough
			return
		}
		io.WriteString(server, resp)
	}()
	c := newHTTPConn(client)
	status, keep, _, err = c.exchange([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), head)
	if err == nil {
		// What follows the response must be untouched: the next response
		// on a kept-alive connection starts there.
		b, _ := io.ReadAll(io.MultiReader(bytes.NewReader(c.rb.buf[c.rb.start:c.rb.end]), c.nc))
		rest = string(b)
	}
	return status, keep, rest, err
}

func TestHTTPResponseParsing(t *testing.T) {
	const next = "NEXT"
	for _, tc := range []struct {
		name   string
		resp   string
		head   bool
		status int
		keep   bool
		// rest is what must remain unread ("NEXT" when the body has a known end).
		rest string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + next, false, 200, true, next},
		{"header case", "HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh: 2\r\n\r\nhi" + next, false, 200, true, next},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
			"a;x=y\r\n0123456789\r\n0\r\nTrailer: 1\r\n\r\n" + next, false, 200, true, next},
		{"connection close", "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" + next, false, 503, false, next},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx" + next, false, 200, true, next},
		{"HTTP/1.0 read to close", "HTTP/1.0 200 OK\r\n\r\nall of this" + next, false, 200, false, ""},
		{"HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + next, true, 200, true, next},
		{"204 has no body", "HTTP/1.1 204 No Content\r\n\r\n" + next, false, 204, true, next},
		{"304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n" + next, false, 304, true, next},
		{"100 continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" + next, false, 201, true, next},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, keep, rest, err := exchangeWith(t, tc.resp, tc.head)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || keep != tc.keep || rest != tc.rest {
				t.Errorf("status %d keep %v rest %q; want %d %v %q", status, keep, rest, tc.status, tc.keep, tc.rest)
			}
		})
	}
}

func TestHTTPResponseParsingRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp string
		want ErrorClass
	}{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", ErrOther},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", ErrOther},
		{"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ErrOther},
		{"header without colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", ErrOther},
		{"header line too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", readBufferSize) + "\r\n\r\n", ErrOther},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ErrOther},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX\r\n0\r\n\r\n", ErrOther},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", ErrOther},
		{"cut in the headers", "HTTP/1.1 200 OK\r\nContent-Len", ErrReset},
		{"cut in a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort", ErrReset},
		{"nothing at all", "", ErrReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := exchangeWith(t, tc.resp, false)
			if err == nil {
				t.Fatal("no error")
			}
			if got := classify(err); got != tc.want {
				t.Errorf("%v classified %s, want %s", err, got, tc.want)
			}
			if tc.want == ErrOther && !errors.Is(err, errMalformed) {
				t.Errorf("%v does not say the response is malformed", err)
			}
		})
	}
}

// TestHTTPResponseParserByteByByte feeds each response one byte at a time,
// as a slow network would deliver it: the parser must reach the same
// answer as with the whole response at once and stop at the same byte.
func TestHTTPResponseParserByteByByte(t *testing.T) {
	for _, tc := range []struct {
		resp   string
		status int
		keep   bool
		length int // of the response; what follows is the next one
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", 200, true, 43},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;e=1\r\n!!!\r\n0\r\nT: 1\r\n\r\nNEXT", 200, true, 80},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\nConnection: close\nContent-Length: 1\n\nxNEXT", 500, false, 81},
	} {
		if !strings.HasSuffix(tc.resp[:tc.length+4], "NEXT") {
			t.Fatalf("test case %q: length %d does not end before NEXT", tc.resp, tc.length)
		}
		var p responseParser
		p.reset(false)
		rb := readBuffer{buf: make([]byte, 64)}
		for i := 0; i < len(tc.resp) && !p.done(); i++ {
			free := rb.free()
			if len(free) == 0 {
				t.Fatalf("%q: buffer full at byte %d", tc.resp, i)
			}
			free[0] = tc.resp[i]
			rb.end++
			if err := rb.parse(&p); err != nil {
				t.Fatalf("%q: byte %d: %v", tc.resp, i, err)
			}
			if p.done() && i+1 != tc.length {
				t.Errorf("%q: done after %d bytes, want %d", tc.resp, i+1, tc.length)
			}
		}
		if !p.done() || p.status != tc.status || p.keep != tc.keep {
			t.Errorf("%q: done %v status %d keep %v; want %d %v", tc.resp, p.done(), p.status, p.keep, tc.status, tc.keep)
		}
	}
}

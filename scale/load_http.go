package scale

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
)

// The generator speaks HTTP/1.1 on its own connections instead of using
// net/http's Transport: a load generator sends the same request over and
// over and only needs the status and the end of the body, and skipping the
// Transport's per-request allocations, goroutines and connection pool is
// what lets it keep up with wrk (see docs/load.md for the measurement).

const readBufferSize = 16 << 10

// httpConn is one HTTP/1.1 connection, used by one worker.
type httpConn struct {
	nc   net.Conn
	br   *bufio.Reader
	used bool // a response was read on it: a later failure may be a stale keep-alive
}

func newHTTPConn(nc net.Conn) *httpConn {
	return &httpConn{nc: nc, br: bufio.NewReaderSize(nc, readBufferSize)}
}

// errMalformed is a response that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

// exchange writes one request and reads its response to the end. It
// reports the status, whether the connection may carry another request,
// and whether any byte of the response arrived.
func (c *httpConn) exchange(req []byte, head bool) (status int, keep, gotBytes bool, err error) {
	if _, err := c.nc.Write(req); err != nil {
		return 0, false, false, err
	}
	for {
		status, keep, gotBytes, err = c.readResponse(head)
		// 1xx responses (100 Continue, 103 Early Hints) precede the real one.
		if err != nil || status >= 200 || status == 101 {
			break
		}
	}
	if err == nil && status == 101 {
		return status, false, true, fmt.Errorf("%w: the server switched protocols (101), which a load generator cannot follow", errMalformed)
	}
	return status, keep, gotBytes, err
}

func (c *httpConn) readResponse(head bool) (status int, keep, gotBytes bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 {
			return 0, false, false, err
		}
		return 0, false, true, unexpected(err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, true, fmt.Errorf("%w: status line %q", errMalformed, trimLine(line))
	}
	status, ok := parseStatus(line[9:12])
	if !ok {
		return 0, false, true, fmt.Errorf("%w: status line %q", errMalformed, trimLine(line))
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told otherwise

	contentLength := int64(-1)
	chunked, otherCoding := false, false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return status, false, true, fmt.Errorf("%w: header line longer than %d bytes", errMalformed, readBufferSize)
			}
			return status, false, true, unexpected(err)
		}
		line = trimLine(line)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return status, false, true, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case headerIs(name, "content-length"):
			n, ok := parseUint(value, 10)
			if !ok {
				return status, false, true, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			contentLength = n
		case headerIs(name, "transfer-encoding"):
			if bytes.EqualFold(lastToken(value), []byte("chunked")) {
				chunked = true
			} else {
				otherCoding = true
			}
		case headerIs(name, "connection"):
			if hasToken(value, "close") {
				keep = false
			} else if hasToken(value, "keep-alive") {
				keep = true
			}
		}
	}

	switch {
	case head || status < 200 || status == 204 || status == 304:
		// No body.
	case chunked:
		err = c.discardChunked()
	case otherCoding || contentLength < 0:
		// The body ends when the server closes the connection.
		_, err = io.Copy(io.Discard, c.br)
		keep = false
	default:
		_, err = c.br.Discard(int(contentLength))
	}
	if err != nil {
		return status, false, true, unexpected(err)
	}
	return status, keep, true, nil
}

func (c *httpConn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = trimLine(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseUint(bytes.TrimSpace(line), 16)
		if !ok {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			// Trailers, then an empty line.
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(trimLine(line)) == 0 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(size)); err != nil {
			return err
		}
		if line, err := c.br.ReadSlice('\n'); err != nil {
			return err
		} else if len(trimLine(line)) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

// unexpected turns an EOF in the middle of a response into
// io.ErrUnexpectedEOF, so it reads as what it is.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseUint parses a decimal or hex size without the allocation
// strconv's string conversion would cost on every response.
func parseUint(b []byte, base int64) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, false
		}
		n = n*base + d
	}
	return n, true
}

func parseStatus(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 100
}

func trimLine(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// headerIs compares a header name with a lower-case name, ignoring case.
func headerIs(name []byte, lower string) bool {
	return len(name) == len(lower) && bytes.EqualFold(name, []byte(lower))
}

// hasToken reports whether a comma-separated header value holds token.
func hasToken(value []byte, token string) bool {
	for part := range bytes.SplitSeq(value, []byte(",")) {
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(token)) {
			return true
		}
	}
	return false
}

func lastToken(value []byte) []byte {
	if i := bytes.LastIndexByte(value, ','); i >= 0 {
		value = value[i+1:]
	}
	return bytes.TrimSpace(value)
}

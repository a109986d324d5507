package scale

import (
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
//
// Both engines (the event loops of load_loop_linux.go and the goroutine
// per connection of load_worker.go) read responses with responseParser,
// which takes bytes as they arrive and never blocks.

// readBufferSize is each connection's read buffer, and so the longest
// response head (or chunk-size line) the parser accepts.
const readBufferSize = 16 << 10

// errMalformed is a response that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

// errHeadTooLong is a response head or chunk line that does not fit in
// the read buffer.
var errHeadTooLong = fmt.Errorf("%w: header line longer than %d bytes", errMalformed, readBufferSize)

// Parser states, in the order a response goes through them.
const (
	psHead       = iota // status line and headers
	psFixed             // a Content-Length body: remaining bytes
	psChunkSize         // a chunk-size line
	psChunkData         // a chunk: remaining bytes
	psChunkEnd          // the CRLF after a chunk
	psTrailer           // trailer lines until an empty one
	psUntilClose        // a body that ends when the server closes
	psDone
)

// responseParser reads one HTTP/1.x response incrementally.
type responseParser struct {
	head      bool // the request was HEAD: no body
	state     uint8
	status    int
	keep      bool // the connection may carry another request
	remaining int64
}

func (p *responseParser) reset(head bool) { *p = responseParser{head: head} }

// done reports whether the whole response has been read.
func (p *responseParser) done() bool { return p.state == psDone }

// feed parses as much of b as it can and returns how many bytes it
// consumed; the caller keeps the rest, appends what arrives next and calls
// feed again. Bytes after the end of the response are left unconsumed:
// the next response on a kept-alive connection starts there.
func (p *responseParser) feed(b []byte) (int, error) {
	n := 0
	for p.state != psDone {
		rest := b[n:]
		switch p.state {
		case psHead:
			end, err := p.parseHead(rest)
			if end == 0 || err != nil {
				return n, err
			}
			n += end
		case psFixed, psChunkData:
			k := int(min(int64(len(rest)), p.remaining))
			p.remaining -= int64(k)
			n += k
			if p.remaining > 0 {
				return n, nil
			}
			if p.state == psFixed {
				p.state = psDone
			} else {
				p.state = psChunkEnd
			}
		case psUntilClose:
			return len(b), nil
		default: // the line-based states of a chunked body
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				return n, nil
			}
			if err := p.chunkLine(trimLine(rest[:i+1])); err != nil {
				return n, err
			}
			n += i + 1
		}
	}
	return n, nil
}

// parseHead parses a whole response head at the start of b and returns
// its length, or 0 while it is incomplete.
func (p *responseParser) parseHead(b []byte) (int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0, nil
	}
	// "HTTP/1.1 200 OK\r\n", checked before the rest arrives so that a
	// server speaking something else fails at once.
	line := b[:i+1]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, trimLine(line))
	}
	status, ok := parseStatus(line[9:12])
	if !ok {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, trimLine(line))
	}
	end := headEnd(b)
	if end < 0 {
		return 0, nil
	}
	p.status = status
	p.keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told otherwise

	contentLength := int64(-1)
	chunked, otherCoding := false, false
	for rest := b[i+1 : end]; len(rest) > 0; {
		j := bytes.IndexByte(rest, '\n')
		line, rest = trimLine(rest[:j+1]), rest[j+1:]
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case headerIs(name, "content-length"):
			n, ok := parseUint(value, 10)
			if !ok {
				return 0, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
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
				p.keep = false
			} else if hasToken(value, "keep-alive") {
				p.keep = true
			}
		}
	}

	switch {
	case status == 101:
		return 0, fmt.Errorf("%w: the server switched protocols (101), which a load generator cannot follow", errMalformed)
	case status < 200:
		// 1xx responses (100 Continue, 103 Early Hints) precede the real one.
		p.state = psHead
	case p.head || status == 204 || status == 304 || contentLength == 0 && !chunked:
		p.state = psDone
	case chunked:
		p.state = psChunkSize
	case otherCoding || contentLength < 0:
		p.state = psUntilClose
		p.keep = false
	default:
		p.state, p.remaining = psFixed, contentLength
	}
	return end, nil
}

// headEnd returns the length of the head at the start of b (up to and
// including the empty line that ends it), or -1 while it is incomplete.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

func (p *responseParser) chunkLine(line []byte) error {
	switch p.state {
	case psChunkSize:
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseUint(bytes.TrimSpace(line), 16)
		if !ok {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			p.state = psTrailer
		} else {
			p.state, p.remaining = psChunkData, size
		}
	case psChunkEnd:
		if len(line) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
		p.state = psChunkSize
	case psTrailer:
		if len(line) == 0 {
			p.state = psDone
		}
	}
	return nil
}

// eof is the connection's end: it completes a body that ends with the
// connection and is an error anywhere else (io.EOF when not a byte of the
// response had arrived, which may be a stale keep-alive connection).
func (p *responseParser) eof(gotBytes bool) error {
	switch {
	case p.state == psUntilClose:
		p.state = psDone
		return nil
	case !gotBytes:
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// readBuffer holds a connection's received bytes not yet parsed.
type readBuffer struct {
	buf        []byte
	start, end int
}

// free returns the space to read into, moving unparsed bytes to the
// front first; it is empty when unparsed bytes fill the whole buffer.
func (r *readBuffer) free() []byte {
	if r.start == r.end {
		r.start, r.end = 0, 0
	} else if r.end == len(r.buf) && r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	return r.buf[r.end:]
}

// parse feeds the unparsed bytes to p.
func (r *readBuffer) parse(p *responseParser) error {
	n, err := p.feed(r.buf[r.start:r.end])
	r.start += n
	return err
}

// httpConn is one HTTP/1.1 connection of the goroutine engine, used by
// one worker.
type httpConn struct {
	nc   net.Conn
	rb   readBuffer
	p    responseParser
	used bool // a response was read on it: a later failure may be a stale keep-alive
}

func newHTTPConn(nc net.Conn) *httpConn {
	return &httpConn{nc: nc, rb: readBuffer{buf: make([]byte, readBufferSize)}}
}

// exchange writes one request and reads its response to the end. It
// reports the status, whether the connection may carry another request,
// and whether any byte of the response arrived.
func (c *httpConn) exchange(req []byte, head bool) (status int, keep, gotBytes bool, err error) {
	if _, err := c.nc.Write(req); err != nil {
		return 0, false, false, err
	}
	c.p.reset(head)
	gotBytes = c.rb.start < c.rb.end
	for {
		if err := c.rb.parse(&c.p); err != nil {
			return c.p.status, false, true, err
		}
		if c.p.done() {
			return c.p.status, c.p.keep, true, nil
		}
		free := c.rb.free()
		if len(free) == 0 {
			return c.p.status, false, true, errHeadTooLong
		}
		n, err := c.nc.Read(free)
		c.rb.end += n
		gotBytes = gotBytes || n > 0
		if err == io.EOF {
			if err := c.rb.parse(&c.p); err != nil {
				return c.p.status, false, true, err
			}
			if c.p.done() {
				return c.p.status, c.p.keep, true, nil
			}
			if err := c.p.eof(gotBytes); err != nil {
				return c.p.status, false, gotBytes, err
			}
			return c.p.status, false, true, nil
		}
		if err != nil {
			return c.p.status, false, gotBytes, err
		}
	}
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

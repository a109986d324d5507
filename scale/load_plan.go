package scale

import (
	"bytes"
	"context"
	"crypto/tls"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// seqSentinel stands in for SeqPlaceholder while the URL is parsed: it is
// made of characters URL escaping leaves alone, so it survives RequestURI.
const seqSentinel = "LEAKLABSEQ7f3c9a"

// maxSeqPlaceholders keeps the request template small and the per-request
// formatting cheap.
const maxSeqPlaceholders = 8

// loadPlan is LoadOptions checked and turned into what the workers need:
// the address to dial and the request bytes, split where the sequence
// number goes.
type loadPlan struct {
	rawURL      string
	method      string
	dialAddr    string // host:port
	tls         *tls.Config
	head        bool // HEAD responses have no body
	keepAlive   bool
	connections int
	duration    time.Duration
	requests    int64
	rate        float64
	timeout     time.Duration
	firstSeq    int64
	// forceGoroutines: LoadOptions.goroutineEngine
	forceGoroutines bool
	// request is the whole request (head and body); when the URL has
	// placeholders, requestParts are the pieces between them.
	request      []byte
	requestParts [][]byte
	// highestLatency is the largest latency the histograms must hold.
	highestLatency time.Duration
}

func newLoadPlan(ctx context.Context, o LoadOptions) (*loadPlan, error) {
	p := &loadPlan{
		rawURL: o.URL, method: o.Method, connections: o.Connections, duration: o.Duration,
		requests: o.Requests, rate: o.Rate, timeout: o.Timeout, keepAlive: !o.DisableKeepAlive,
		firstSeq: o.FirstSeq, forceGoroutines: o.goroutineEngine,
	}
	if p.method == "" {
		p.method = http.MethodGet
	}
	if !isToken(p.method) {
		return nil, optionErrorf("method", "method %q is not a valid HTTP method", p.method)
	}
	p.head = p.method == http.MethodHead
	switch {
	case p.connections < 0 || p.connections > MaxConnections:
		return nil, optionErrorf("connections", "connections must be between 1 and %d, not %d", MaxConnections, p.connections)
	case p.connections == 0:
		p.connections = DefaultConnections
	}
	if p.duration < 0 || p.requests < 0 {
		return nil, optionErrorf("duration", "duration and request count cannot be negative")
	}
	if p.duration == 0 && p.requests == 0 {
		p.duration = DefaultDuration
	}
	if p.rate < 0 || math.IsNaN(p.rate) || math.IsInf(p.rate, 0) {
		return nil, optionErrorf("rate", "rate must be a positive number of requests per second, not %v", p.rate)
	}
	switch {
	case p.timeout < 0:
		return nil, optionErrorf("timeout", "timeout cannot be negative")
	case p.timeout == 0:
		p.timeout = DefaultTimeout
	}
	if p.requests > 0 && int64(p.connections) > p.requests {
		// More connections than requests would only open idle sockets.
		p.connections = int(p.requests)
	}

	u, err := parseTargetURL(o.URL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p.dialAddr = net.JoinHostPort(host, port)
	if u.Scheme == "https" {
		p.tls = o.TLSConfig.Clone()
		if p.tls == nil {
			p.tls = &tls.Config{}
		}
		if p.tls.ServerName == "" {
			p.tls.ServerName = host
		}
		// The raw client speaks HTTP/1.1 only.
		p.tls.NextProtos = []string{"http/1.1"}
	}
	if !o.AllowRemote {
		if err := requireLoopback(ctx, host); err != nil {
			return nil, err
		}
	}
	if err := p.buildRequest(u, o.Header, o.Body); err != nil {
		return nil, err
	}

	// A closed-model request takes at most the timeout (a retry on a stale
	// connection shares its deadline). An open-model one can also wait for
	// a connection from its scheduled time until the end of the schedule.
	// Longer values are recorded as this highest one.
	p.highestLatency = p.timeout + time.Second
	if p.rate > 0 {
		schedule := p.duration
		if p.requests > 0 {
			bycount := time.Duration(float64(p.requests) / p.rate * float64(time.Second))
			if schedule == 0 || bycount < schedule {
				schedule = bycount
			}
		}
		p.highestLatency += schedule
	}
	return p, nil
}

func parseTargetURL(raw string) (*url.URL, error) {
	if strings.Count(raw, SeqPlaceholder) > maxSeqPlaceholders {
		return nil, optionErrorf("url", "URL has more than %d %s placeholders", maxSeqPlaceholders, SeqPlaceholder)
	}
	u, err := url.Parse(strings.ReplaceAll(raw, SeqPlaceholder, seqSentinel))
	if err != nil {
		return nil, optionErrorf("url", "invalid URL %q: %v", raw, errorsCause(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, optionErrorf("url", "invalid URL %q: want http:// or https://", raw)
	}
	if u.Hostname() == "" {
		return nil, optionErrorf("url", "invalid URL %q: no host", raw)
	}
	if strings.Contains(u.Host, seqSentinel) {
		return nil, optionErrorf("url", "invalid URL %q: %s may only appear in the path or query", raw, SeqPlaceholder)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, optionErrorf("url", "invalid URL %q: bad port %q", raw, p)
		}
	}
	if u.User != nil {
		return nil, optionErrorf("url", "invalid URL %q: credentials in the URL are not supported; send an Authorization header", raw)
	}
	return u, nil
}

// errorsCause drops url.Error's repetition of the URL.
func errorsCause(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// requireLoopback refuses targets that resolve to anything but loopback.
func requireLoopback(ctx context.Context, host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return optionErrorf("allow-remote", "%s is not a loopback address; loading a remote server must be allowed (allow-remote)", host)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(rctx, host)
	if err != nil {
		return optionErrorf("url", "cannot resolve %s: %v", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return optionErrorf("allow-remote", "%s resolves to %s, not a loopback address; loading a remote server must be allowed (allow-remote)", host, a.IP)
		}
	}
	return nil
}

// buildRequest encodes the request once; workers only splice in sequence
// numbers.
func (p *loadPlan) buildRequest(u *url.URL, header http.Header, body []byte) error {
	var b bytes.Buffer
	target := u.RequestURI()
	b.WriteString(p.method + " " + target + " HTTP/1.1\r\n")
	names := make([]string, 0, len(header))
	for name := range header {
		names = append(names, name)
	}
	slices.Sort(names)
	hostHeader := u.Host
	var haveAgent, haveConnection bool
	for _, name := range names {
		if !isToken(name) {
			return optionErrorf("header", "header name %q is not valid", name)
		}
		canon := http.CanonicalHeaderKey(name)
		for _, v := range header[name] {
			if strings.ContainsAny(v, "\r\n") {
				return optionErrorf("header", "header %s: value contains a line break", name)
			}
			switch canon {
			case "Host":
				hostHeader = v
				continue
			case "Content-Length", "Transfer-Encoding":
				return optionErrorf("header", "header %s is set from the body; do not pass it", canon)
			case "User-Agent":
				haveAgent = true
			case "Connection":
				haveConnection = true
			}
			b.WriteString(canon + ": " + v + "\r\n")
		}
	}
	b.WriteString("Host: " + hostHeader + "\r\n")
	if !haveAgent {
		b.WriteString("User-Agent: leaklab-load\r\n")
	}
	if !p.keepAlive && !haveConnection {
		b.WriteString("Connection: close\r\n")
	}
	if len(body) > 0 || p.method == http.MethodPost || p.method == http.MethodPut || p.method == http.MethodPatch {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	p.request = b.Bytes()
	if bytes.Contains(p.request[:len(p.request)-len(body)], []byte(seqSentinel)) {
		head := p.request[:len(p.request)-len(body)]
		p.requestParts = bytes.Split(head, []byte(seqSentinel))
		last := len(p.requestParts) - 1
		p.requestParts[last] = append(p.requestParts[last][:len(p.requestParts[last]):len(p.requestParts[last])], body...)
	}
	return nil
}

// appendRequest appends request number seq to buf.
func (p *loadPlan) appendRequest(buf []byte, seq int64) []byte {
	seq += p.firstSeq
	for i, part := range p.requestParts {
		if i > 0 {
			buf = strconv.AppendInt(buf, seq, 10)
		}
		buf = append(buf, part...)
	}
	return buf
}

// isToken reports whether s is an HTTP token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

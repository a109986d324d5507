package scale

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// MaxBodyFile bounds LoadCommandOptions.BodyFile: the body is held in
// memory and sent with every request.
const MaxBodyFile = 64 << 20

// LoadCommandOptions are a load's options as 'leaklab load' takes them:
// headers as 'Name: value' lines, the body inline or from a file, and a
// duration that a request count replaces unless it was given.
type LoadCommandOptions struct {
	Connections int
	Duration    time.Duration
	DurationSet bool // Duration was given, not the default: with Requests, both bound the run
	Requests    int64
	Rate        float64
	Timeout     time.Duration
	Method      string
	Headers     []string
	Body        string
	BodyFile    string
	NoKeepAlive bool
	Insecure    bool // skip TLS verification
	AllowRemote bool
	Procs       int // GOMAXPROCS for the load; 0 leaves it
}

// Options checks c and turns it into LoadOptions for url. Refused options
// are *opterr.Error.
func (c LoadCommandOptions) Options(url string) (LoadOptions, error) {
	lo := LoadOptions{
		URL: url, Method: strings.ToUpper(c.Method), Connections: c.Connections, Requests: c.Requests,
		Rate: c.Rate, Timeout: c.Timeout, DisableKeepAlive: c.NoKeepAlive, AllowRemote: c.AllowRemote,
	}
	switch {
	case c.Connections < 1: // 0 would mean the default, not what was asked
		return lo, opterr.Errorf("connections", "-c must be at least 1")
	case c.Duration <= 0:
		return lo, opterr.Errorf("duration", "-d must be positive, e.g. 10s")
	case c.Timeout <= 0:
		return lo, opterr.Errorf("timeout", "--timeout must be positive, e.g. 5s")
	case c.Procs < 0:
		return lo, opterr.Errorf("procs", "--procs cannot be negative")
	case c.Body != "" && c.BodyFile != "":
		return lo, opterr.Errorf("body", "use --body or --body-file, not both")
	}
	if c.DurationSet || c.Requests == 0 {
		lo.Duration = c.Duration
	}
	if len(c.Headers) > 0 {
		lo.Header = http.Header{}
		for _, h := range c.Headers {
			name, value, ok := strings.Cut(h, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return lo, opterr.Errorf("header", "-H %q: want 'Name: value'", h)
			}
			lo.Header.Add(name, strings.TrimSpace(value))
		}
	}
	if c.Body != "" {
		lo.Body = []byte(c.Body)
	}
	if c.BodyFile != "" {
		body, err := readBodyFile(c.BodyFile)
		if err != nil {
			return lo, err
		}
		lo.Body = body
	}
	if c.Insecure {
		lo.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for --insecure
	}
	return lo, nil
}

func readBodyFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, opterr.Errorf("body-file", "--body-file: %v", err)
	}
	defer fh.Close()
	tooLarge := opterr.Errorf("body-file", "--body-file: %s is larger than %d MiB; a load body is sent with every request", path, MaxBodyFile>>20)
	// A regular file's size is known without reading it; a pipe's is
	// not, so reading stops one byte past the bound.
	if info, err := fh.Stat(); err == nil && info.Mode().IsRegular() && info.Size() > MaxBodyFile {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(fh, MaxBodyFile+1))
	if err != nil {
		return nil, fmt.Errorf("--body-file: %w", err)
	}
	if len(body) > MaxBodyFile {
		return nil, tooLarge
	}
	return body, nil
}

package collect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// maxSampleTypeConfig bounds the sample_type_config part; pyroscope-go's
// largest is a few hundred bytes.
const maxSampleTypeConfig = 64 << 10

// PushTargetPrefix starts the Target of pushed profiles in the store:
// push://APP, e.g. push://leaklab.unbounded-cache, so that
// 'leaklab profiles ls --target push://leaklab.unbounded-cache' selects
// one pushing application.
const PushTargetPrefix = "push://"

// ingestError is a rejected push: an HTTP status, a metric reason and
// one line saying what was wrong.
type ingestError struct {
	code   int
	reason string
	msg    string
}

func (e *ingestError) Error() string { return e.msg }

func reject(code int, reason, format string, args ...any) *ingestError {
	return &ingestError{code: code, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// handleIngest answers one push: 200 once the profile is stored (and
// queued for forwarding), else a 4xx/5xx with one line, a log line and
// nothing stored.
func (c *Collector) handleIngest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	err := c.ingest(w, r)
	code := http.StatusOK
	if err != nil {
		var ie *ingestError
		if !errors.As(err, &ie) {
			ie = reject(http.StatusInternalServerError, "internal", "%v", err)
		}
		code = ie.code
		c.m.pushRejected.WithLabelValues(ie.reason).Inc()
		c.mu.Lock()
		c.summary.PushesRejected++
		c.mu.Unlock()
		c.log.Warn("push rejected", "remote", r.RemoteAddr, "status", code, "reason", ie.reason, "err", ie.msg)
		if code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		http.Error(w, "leaklab collect: "+ie.msg, code)
	}
	c.m.ingestTime.WithLabelValues(strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

func (c *Collector) ingest(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return reject(http.StatusMethodNotAllowed, "method", "%s /ingest: the ingest API takes POST", r.Method)
	}
	q := r.URL.Query()
	name, err := parseAppName(q.Get("name"))
	if err != nil {
		return reject(http.StatusBadRequest, "bad_name", "%v", err)
	}
	if f := q.Get("format"); f != "" && f != "pprof" {
		return reject(http.StatusUnsupportedMediaType, "format", "format=%s is not accepted: leaklab collect takes pprof profiles only", f)
	}
	from, err := parseIngestTime(q.Get("from"))
	if err != nil {
		return reject(http.StatusBadRequest, "bad_time", "from: %v", err)
	}
	until, err := parseIngestTime(q.Get("until"))
	if err != nil {
		return reject(http.StatusBadRequest, "bad_time", "until: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return reject(http.StatusUnsupportedMediaType, "content_type",
			"Content-Type %q is not accepted: send multipart/form-data with the pprof profile in a part named profile (as pyroscope-go does)", r.Header.Get("Content-Type"))
	}

	// Decoding a profile takes memory; bound how many are decoded at once.
	select {
	case c.push <- struct{}{}:
		defer func() { <-c.push }()
	case <-r.Context().Done():
		return reject(http.StatusServiceUnavailable, "cancelled", "the request was cancelled while waiting")
	}

	body := http.MaxBytesReader(w, r.Body, c.opts.MaxPushBytes)
	raw, config, err := readIngestParts(body, params["boundary"])
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return reject(http.StatusRequestEntityTooLarge, "too_large", "the request body is larger than %d bytes, the limit (--max-push-size)", c.opts.MaxPushBytes)
		}
		return err
	}
	cp, err := profiles.Read(bytes.NewReader(raw), c.opts.Limits)
	if err != nil {
		var tooLarge *profiles.LimitError
		if errors.As(err, &tooLarge) {
			return reject(http.StatusRequestEntityTooLarge, "too_large", "the profile part: %v", err)
		}
		return reject(http.StatusBadRequest, "not_profile", "the profile part is %v", err)
	}
	// Read checks the tables only; parse fully too, as Fetch does for a
	// pulled profile, so that a profile the pprof tools would refuse (a
	// sample at a missing location, say) is refused before it is stored.
	if _, err := cp.Profile(); err != nil {
		return reject(http.StatusBadRequest, "not_profile", "the profile part is %v", err)
	}
	types := map[string]sampleType{}
	if config != nil {
		if err := json.Unmarshal(config, &types); err != nil {
			return reject(http.StatusBadRequest, "bad_config", "the sample_type_config part is not the JSON object the ingest API expects: %v", err)
		}
	}

	cp.Type = pushedType(cp.Type, types)
	cp.Target = PushTargetPrefix + name.App
	cp.Service = name.Labels["service"]
	if cp.Service == "" {
		cp.Service = name.App
	}
	// The pusher's labels, but not those of one process or one push
	// (__session_id__ and the like), which detection keeps under its own
	// names (pushLabels).
	cp.Labels = pushLabels(cp.Type, name.Labels[labelSession], from, types)
	for k, v := range name.Labels {
		if !strings.HasPrefix(k, "__") {
			cp.Labels[k] = v
		}
	}
	cp.Labels["app"] = name.App
	cp.Labels[LabelCollected] = "push"
	cp.Time = time.Now().UTC()
	if !until.IsZero() {
		cp.Time = until
	}
	if !from.IsZero() && until.After(from) && (cp.Type == profiles.TypeCPU || cp.Type == profiles.TypeMutex || cp.Type == profiles.TypeBlock) {
		cp.Seconds = int(until.Sub(from).Round(time.Second) / time.Second)
	}

	var fwd *forwardItem
	if c.fwd != nil {
		fwd = &forwardItem{query: maps.Clone(q), profile: raw, config: config}
	}
	size, err := c.deliver(cp, raw, fwd)
	if err != nil {
		return reject(http.StatusInternalServerError, "store", "cannot store the profile: %v", err)
	}
	if c.fleet != nil {
		c.fleet.observePush(cp)
	}
	c.m.pushes.WithLabelValues(cp.Service, cp.Type).Inc()
	c.m.pushBytes.WithLabelValues(cp.Service, cp.Type).Add(float64(len(raw)))
	c.mu.Lock()
	c.summary.Pushes++
	c.summary.Bytes += size
	c.mu.Unlock()
	return nil
}

// readIngestParts reads the multipart body: the profile part (required)
// and sample_type_config (optional); other parts (older clients send
// prev_profile) are read past.
func readIngestParts(body io.Reader, boundary string) (profile, config []byte, err error) {
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, badMultipart(err)
		}
		switch part.FormName() {
		case "profile":
			if profile != nil {
				return nil, nil, reject(http.StatusBadRequest, "bad_multipart", "the body has two profile parts")
			}
			if profile, err = io.ReadAll(part); err != nil {
				return nil, nil, badMultipart(err)
			}
			if profile == nil {
				profile = []byte{}
			}
		case "sample_type_config":
			config, err = io.ReadAll(io.LimitReader(part, maxSampleTypeConfig+1))
			if err != nil {
				return nil, nil, badMultipart(err)
			}
			if len(config) > maxSampleTypeConfig {
				return nil, nil, reject(http.StatusRequestEntityTooLarge, "too_large", "the sample_type_config part is larger than %d bytes", maxSampleTypeConfig)
			}
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, nil, badMultipart(err)
			}
		}
	}
	if profile == nil {
		return nil, nil, reject(http.StatusBadRequest, "no_profile", "the multipart body has no part named profile (it should hold the pprof profile)")
	}
	return profile, config, nil
}

func badMultipart(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return reject(http.StatusBadRequest, "bad_multipart", "the body is not valid multipart/form-data: %v", err)
}

// pushedType names a pushed profile's type. The content says heap,
// goroutine or cpu; mutex and block profiles look alike, and only the
// sample_type_config's display names (mutex_count, block_count) tell
// them apart.
func pushedType(inferred string, types map[string]sampleType) string {
	for _, st := range types {
		switch {
		case strings.HasPrefix(st.DisplayName, "mutex_"):
			return profiles.TypeMutex
		case strings.HasPrefix(st.DisplayName, "block_"):
			return profiles.TypeBlock
		case st.DisplayName == "goroutine_leak":
			return profiles.TypeGoroutineLeak
		}
	}
	if inferred == profiles.TypeAllocs {
		// godeltaprof's heap profile leads with alloc_space but carries the
		// in-use values too: it is the heap profile.
		return profiles.TypeHeap
	}
	return inferred
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// counters record what a workload did, so a case whose workload failed is
// reported as failed instead of as a clean (or missed) watch.
type counters struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	lastErr    error
}

func (c *counters) record(err error) {
	if err == nil {
		c.ok.Add(1)
		return
	}
	c.failed.Add(1)
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

func (c *counters) last() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// driver runs a workload against a started server until ctx is done.
type driver func(ctx context.Context, r *running, c *counters)

// paced calls op at rate calls per second with up to workers in flight,
// numbering the calls from 0; a tick that finds every worker busy is
// skipped (the rate is an upper bound, so a slow server is never flooded).
func paced(ctx context.Context, rate float64, workers int, c *counters, op func(ctx context.Context, i int64) error) {
	seq := make(chan int64)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range seq {
				c.record(op(ctx, i))
			}
		}()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer func() {
		tick.Stop()
		close(seq)
		wg.Wait()
	}()
	var i int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			select {
			case seq <- i:
				i++
			default:
			}
		}
	}
}

var apiClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16},
}

// send makes one request and fails on any status outside 2xx.
func send(ctx context.Context, method, url, contentType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the workload is ending, not failing
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return nil
}

// --- etcd (v3 API through its JSON gateway) ---

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func etcdPut(ctx context.Context, r *running, key, value string) error {
	body, _ := json.Marshal(map[string]string{"key": b64(key), "value": b64(value)})
	return send(ctx, http.MethodPost, r.apiURL()+"/v3/kv/put", "application/json", body)
}

func etcdGet(ctx context.Context, r *running, key string) error {
	body, _ := json.Marshal(map[string]string{"key": b64(key)})
	return send(ctx, http.MethodPost, r.apiURL()+"/v3/kv/range", "application/json", body)
}

// etcdSteady reads a fixed set of 200 keys and rewrites one a second: the
// keyspace stays the same size (each rewrite adds one revision, a few bytes,
// to the index, and one entry to the raft log, which the snapshot every
// 100,000 entries bounds).
func etcdSteady(ctx context.Context, r *running, c *counters) {
	go paced(ctx, 1, 1, c, func(ctx context.Context, i int64) error {
		return etcdPut(ctx, r, fmt.Sprintf("/config/service-%03d", i%200), fmt.Sprintf(`{"replicas":%d}`, i%7))
	})
	paced(ctx, 80, 4, c, func(ctx context.Context, i int64) error {
		return etcdGet(ctx, r, fmt.Sprintf("/config/service-%03d", i%200))
	})
}

// etcdUniqueKeys writes a new key every time (session records that nobody
// deletes and that carry no lease): etcd keeps every key in its in-memory
// index and, until the next raft snapshot, every request in its raft log.
func etcdUniqueKeys(ctx context.Context, r *running, c *counters) {
	value := strings.Repeat("v", 200)
	paced(ctx, 150, 8, c, func(ctx context.Context, i int64) error {
		return etcdPut(ctx, r, fmt.Sprintf("/sessions/%016x/user-%d/token", i*7919, i), value)
	})
}

// etcdHeldWatches opens a watch stream on a new key every half second and
// never closes it, as a client that watches per request and forgets to
// cancel. Each stream holds goroutines in the gateway and the gRPC server.
func etcdHeldWatches(ctx context.Context, r *running, c *counters) {
	var wg sync.WaitGroup
	defer wg.Wait()
	paced(ctx, 2, 1, c, func(ctx context.Context, i int64) error {
		body, _ := json.Marshal(map[string]any{"create_request": map[string]string{"key": b64(fmt.Sprintf("/jobs/%d", i))}})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.apiURL()+"/v3/watch", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := streamClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return errors.New("watch: " + resp.Status)
		}
		wg.Add(1)
		go func() { // read the stream until the workload ends
			defer wg.Done()
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
		}()
		return nil
	})
}

// streamClient has no overall timeout: its responses are held open.
var streamClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}

// --- pushgateway ---

// pushGroup is one batch job's metrics in the text exposition format.
func pushGroup(job int64) []byte {
	var b bytes.Buffer
	b.WriteString("# TYPE batch_records_processed_total counter\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "batch_records_processed_total{stage=\"stage-%02d\",shard=\"%d\"} %d\n", i, i%4, job*100+int64(i))
	}
	b.WriteString("# TYPE batch_duration_seconds gauge\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "batch_duration_seconds{step=\"step-%02d\"} %d.5\n", i, job%97)
	}
	fmt.Fprintf(&b, "# TYPE batch_last_success_timestamp_seconds gauge\nbatch_last_success_timestamp_seconds %d\n", time.Now().Unix())
	return b.Bytes()
}

// pushgatewaySteady: 20 batch jobs push their metrics, each replacing its
// own group, as the pushgateway is meant to be used.
func pushgatewaySteady(ctx context.Context, r *running, c *counters) {
	paced(ctx, 20, 4, c, func(ctx context.Context, i int64) error {
		return send(ctx, http.MethodPut, fmt.Sprintf("%s/metrics/job/nightly/instance/worker-%02d", r.apiURL(), i%20), "text/plain; version=0.0.4", pushGroup(i))
	})
}

// pushgatewayUniqueGroups: every run pushes under its own run ID in the
// grouping key, and nobody deletes the groups: the gateway keeps every group
// forever (it never expires pushed metrics, by design).
func pushgatewayUniqueGroups(ctx context.Context, r *running, c *counters) {
	paced(ctx, 10, 4, c, func(ctx context.Context, i int64) error {
		return send(ctx, http.MethodPut, fmt.Sprintf("%s/metrics/job/nightly/run_id/run-%08d", r.apiURL(), i), "text/plain; version=0.0.4", pushGroup(i))
	})
}

// --- alertmanager ---

func postAlerts(ctx context.Context, r *running, names []string, endsIn time.Duration) error {
	now := time.Now().UTC()
	alerts := make([]map[string]any, 0, len(names))
	for _, n := range names {
		alerts = append(alerts, map[string]any{
			"labels": map[string]string{"alertname": n, "severity": "warning", "service": "checkout", "instance": "10.0.0.7:9100"},
			"annotations": map[string]string{
				"summary":     "Instance " + n + " is above its latency objective",
				"description": "p99 latency has been above 500ms for 10 minutes on " + n,
			},
			"startsAt":     now.Add(-time.Minute).Format(time.RFC3339),
			"endsAt":       now.Add(endsIn).Format(time.RFC3339),
			"generatorURL": "http://prometheus.example/graph?g0.expr=latency",
		})
	}
	body, _ := json.Marshal(alerts)
	return send(ctx, http.MethodPost, r.apiURL()+"/api/v2/alerts", "application/json", body)
}

// alertmanagerSteady: a rule evaluator re-sends the same 50 firing alerts
// (five groups) every few seconds, as Prometheus does.
func alertmanagerSteady(ctx context.Context, r *running, c *counters) {
	paced(ctx, 10, 2, c, func(ctx context.Context, i int64) error {
		names := make([]string, 10)
		for k := range names {
			names[k] = fmt.Sprintf("HighLatency%d", (int(i)*10+k)%50/10)
		}
		return postAlerts(ctx, r, names, 5*time.Minute)
	})
}

// alertmanagerUniqueGroups: every alert carries a new alertname (an ID
// templated into the name), so each opens a new aggregation group, with its
// own goroutine, that lives as long as its alert (endsAt an hour ahead).
func alertmanagerUniqueGroups(ctx context.Context, r *running, c *counters) {
	paced(ctx, 5, 2, c, func(ctx context.Context, i int64) error {
		names := make([]string, 5)
		for k := range names {
			names[k] = fmt.Sprintf("JobFailed_%08d", i*5+int64(k))
		}
		return postAlerts(ctx, r, names, time.Hour)
	})
}

// --- prometheus (scraping an exporter the driver serves) ---

// serveExporter serves /metrics on the port Prometheus scrapes; page writes
// one scrape's body.
func serveExporter(ctx context.Context, r *running, c *counters, page func(w io.Writer, scrape int64)) {
	var n atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			page(w, n.Add(1))
			c.record(nil)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(r.ports.scrapedLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		c.record(err)
	}
}

func fixedSeries(w io.Writer, scrape int64) {
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	for i := 0; i < 400; i++ {
		fmt.Fprintf(w, "http_requests_total{handler=\"/api/v1/item/%d\",code=\"%d\",method=\"GET\"} %d\n", i/4, 200+i%4, scrape*int64(i+1))
	}
}

// prometheusSteady: a scraped application with 400 fixed series.
func prometheusSteady(ctx context.Context, r *running, c *counters) {
	serveExporter(ctx, r, c, fixedSeries)
}

// prometheusChurn: the application puts a request ID into a label, so every
// scrape brings 60 series never seen before; the head block keeps each
// series (labels, postings, head chunk) until the head is compacted, hours
// later.
func prometheusChurn(ctx context.Context, r *running, c *counters) {
	serveExporter(ctx, r, c, func(w io.Writer, scrape int64) {
		fixedSeries(w, scrape)
		fmt.Fprintln(w, "# TYPE request_bytes gauge")
		for i := int64(0); i < 40; i++ {
			fmt.Fprintf(w, "request_bytes{request_id=\"req-%012d\",handler=\"/api/v1/upload\"} %d\n", scrape*40+i, 1000+i)
		}
	})
}

// --- influxdb (1.x line protocol) ---

func influxCreateDB(ctx context.Context, r *running) error {
	return send(ctx, http.MethodPost, r.apiURL()+"/query?q="+strings.ReplaceAll("CREATE DATABASE app", " ", "+"), "", nil)
}

func influxWrite(ctx context.Context, r *running, lines []byte) error {
	return send(ctx, http.MethodPost, r.apiURL()+"/write?db=app&precision=ns", "text/plain", lines)
}

func influxWorkload(ctx context.Context, r *running, c *counters, series func(b *bytes.Buffer, i int64, now int64)) {
	if err := retry(ctx, func() error { return influxCreateDB(ctx, r) }); err != nil {
		c.record(err)
		return
	}
	paced(ctx, 10, 2, c, func(ctx context.Context, i int64) error {
		var b bytes.Buffer
		series(&b, i, time.Now().UnixNano())
		return influxWrite(ctx, r, b.Bytes())
	})
}

// influxdbSteady: 200 hosts report cpu every second: a fixed set of series.
func influxdbSteady(ctx context.Context, r *running, c *counters) {
	influxWorkload(ctx, r, c, func(b *bytes.Buffer, i, now int64) {
		for h := int64(0); h < 20; h++ {
			fmt.Fprintf(b, "cpu,host=host-%03d,region=eu usage_user=%d.5,usage_system=%d.25 %d\n", (i*20+h)%200, h, i%50, now+h)
		}
	})
}

// influxdbUniqueSeries: a tag carries a container ID that is new every
// time, so every point opens a series: the in-memory index (and the series
// file's index) keep every series until they are dropped.
func influxdbUniqueSeries(ctx context.Context, r *running, c *counters) {
	influxWorkload(ctx, r, c, func(b *bytes.Buffer, i, now int64) {
		for h := int64(0); h < 16; h++ {
			fmt.Fprintf(b, "container_cpu,container_id=c%016x,host=host-%03d,image=registry.example/app usage=%d.5 %d\n", (i*16+h)*2654435761, h, h, now+h)
		}
	})
}

func retry(ctx context.Context, op func() error) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = op(); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}

// --- nats (its text protocol over TCP) ---

// natsConn is a client connection that answers the server's PINGs and
// counts the messages it receives.
type natsConn struct {
	conn net.Conn
	mu   sync.Mutex
	w    *bufio.Writer
	msgs atomic.Int64
}

func natsDial(ctx context.Context, r *running) (*natsConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", r.ports.api))
	if err != nil {
		return nil, err
	}
	nc := &natsConn{conn: conn, w: bufio.NewWriter(conn)}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		conn.Close()
		return nil, fmt.Errorf("nats: no INFO from the server (%q, %v)", line, err)
	}
	if err := nc.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"realworld\"}\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	go nc.readLoop(br)
	return nc, nil
}

func (nc *natsConn) send(s string) error {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if _, err := nc.w.WriteString(s); err != nil {
		return err
	}
	return nc.w.Flush()
}

func (nc *natsConn) readLoop(br *bufio.Reader) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(line, "PING"):
			_ = nc.send("PONG\r\n")
		case strings.HasPrefix(line, "MSG "):
			f := strings.Fields(line)
			size, _ := strconv.Atoi(f[len(f)-1])
			if _, err := io.CopyN(io.Discard, br, int64(size)+2); err != nil {
				return
			}
			nc.msgs.Add(1)
		}
	}
}

// natsSteady: one subscriber on 50 order subjects, one publisher sending to
// them: subscriptions and connections stay the same.
func natsSteady(ctx context.Context, r *running, c *counters) {
	sub, err := natsDial(ctx, r)
	if err != nil {
		c.record(err)
		return
	}
	defer sub.conn.Close()
	pub, err := natsDial(ctx, r)
	if err != nil {
		c.record(err)
		return
	}
	defer pub.conn.Close()
	for i := 0; i < 50; i++ {
		c.record(sub.send(fmt.Sprintf("SUB orders.region-%02d %d\r\n", i, i+1)))
	}
	payload := strings.Repeat("x", 256)
	paced(ctx, 400, 1, c, func(ctx context.Context, i int64) error {
		return pub.send(fmt.Sprintf("PUB orders.region-%02d %d\r\n%s\r\n", i%50, len(payload), payload))
	})
}

// natsUniqueSubs: a client subscribes to a reply subject of its own for
// every request and never unsubscribes: the server keeps every subscription
// (in the client's map and in the account's subject tree).
func natsUniqueSubs(ctx context.Context, r *running, c *counters) {
	nc, err := natsDial(ctx, r)
	if err != nil {
		c.record(err)
		return
	}
	defer nc.conn.Close()
	paced(ctx, 12, 1, c, func(ctx context.Context, i int64) error {
		var b strings.Builder
		for k := int64(0); k < 10; k++ {
			fmt.Fprintf(&b, "SUB _INBOX.rw%012d.reply.%d %d\r\n", i*10+k, k, i*10+k+1)
		}
		return nc.send(b.String())
	})
}

// natsHeldConns: a client pool that dials a new connection every half second
// and never closes the old ones: each connection holds the server's read and
// write loops (two goroutines) and their buffers.
func natsHeldConns(ctx context.Context, r *running, c *counters) {
	var held []*natsConn
	defer func() {
		for _, nc := range held {
			nc.conn.Close()
		}
	}()
	paced(ctx, 2, 1, c, func(ctx context.Context, i int64) error {
		nc, err := natsDial(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		held = append(held, nc) // paced with one worker: no concurrent append
		return nc.send(fmt.Sprintf("SUB events.worker-%d 1\r\n", i))
	})
}

// --- caddy ---

// caddySteady: a keep-alive client pool fetching a page.
func caddySteady(ctx context.Context, r *running, c *counters) {
	paced(ctx, 100, 4, c, func(ctx context.Context, i int64) error {
		return send(ctx, http.MethodGet, r.apiURL()+"/", "", nil)
	})
}

// caddyHeldConns: clients that open a keep-alive connection, make one
// request and then hold the connection idle without closing it; caddy
// keeps each idle connection (its goroutine and buffers) for its idle
// timeout, five minutes by default.
func caddyHeldConns(ctx context.Context, r *running, c *counters) {
	var held []net.Conn
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: realworld\r\n\r\n", r.ports.api)
	paced(ctx, 3, 1, c, func(ctx context.Context, i int64) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", r.ports.api))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, err := io.WriteString(conn, req); err != nil {
			conn.Close()
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		held = append(held, conn)
		return nil
	})
}

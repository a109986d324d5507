package main

// A case is one server under one workload.
//
// Culprits follow one rule: the functions that decide to keep the growing
// memory (or goroutine), as specific to it as the stacks allow; generic
// helpers that merely allocate on their behalf (encoders, clone and
// constructor helpers of general data structures) are not accepted, and
// neither are dispatchers on every stack (routers, middleware, connection
// loops), except where no more specific frame exists (caddy-held-conns). Healthy cases must get no
// suspect; leak cases grow without bound through the server's normal API,
// and a suspect whose function is one of culprits names the leak rightly.
type leakCase struct {
	name   string
	server string
	driver driver
	// leak is the kind of unbounded growth the workload causes: "" for a
	// healthy case, else "heap", "goroutine" or "heap+goroutine".
	leak string
	// culprits are the functions a reader of the server's source accepts
	// as the leak's site, preferred first; a suspect names the leak rightly
	// when its function equals one of them or is a closure inside one
	// (prefix followed by ".func").
	culprits []string
	// why says where the growth is kept and why these functions are the
	// ones to name.
	why string
}

var cases = []leakCase{
	{name: "etcd-healthy", server: "etcd", driver: etcdSteady,
		why: "reads and rewrites of 200 fixed keys; the keyspace does not grow"},
	{name: "etcd-unique-keys", server: "etcd", driver: etcdUniqueKeys, leak: "heap",
		culprits: []string{
			"go.etcd.io/etcd/mvcc.(*treeIndex).Put",
			"go.etcd.io/etcd/mvcc.newKeyIndex",
			"go.etcd.io/etcd/mvcc.(*keyIndex).put",
			"go.etcd.io/etcd/mvcc.(*storeTxnWrite).put",
			"go.etcd.io/etcd/raft.(*MemoryStorage).Append",
			"go.etcd.io/etcd/raft.(*raftLog).append",
			"go.etcd.io/etcd/raft.(*unstable).truncateAndAppend",
			"go.etcd.io/etcd/etcdserver.(*EtcdServer).processInternalRaftRequestOnce",
		},
		why: "every new key gets a keyIndex in mvcc's treeIndex (a B-tree kept in memory for the whole keyspace), " +
			"and every put stays in raft's in-memory log until the next snapshot (100,000 entries by default); " +
			"the index is what a reader names (the keys are never deleted), the raft log (bounded by the next snapshot, " +
			"but growing for minutes) is an acceptable second; InternalRaftRequest.Marshal, where the log's entries are " +
			"allocated, is generic encoding and not accepted"},
	{name: "etcd-held-watches", server: "etcd", driver: etcdHeldWatches, leak: "goroutine",
		culprits: []string{
			"go.etcd.io/etcd/etcdserver/api/v3rpc.(*serverWatchStream).recvLoop",
			"go.etcd.io/etcd/etcdserver/api/v3rpc.(*serverWatchStream).sendLoop",
			"go.etcd.io/etcd/etcdserver/api/v3rpc.(*watchServer).Watch",
			"go.etcd.io/etcd/mvcc.(*watchableStore).NewWatchStream",
			"go.etcd.io/etcd/etcdserver/etcdserverpb/gw.RegisterWatchHandlerClient",
			"go.etcd.io/etcd/etcdserver/etcdserverpb.(*watchWatchClient).Recv",
		},
		why: "each watch stream that is never cancelled keeps the v3rpc serverWatchStream's receive and send loops " +
			"parked, and, since etcd's JSON gateway is an in-process gRPC client, the gateway's watch client stream " +
			"(gw.RegisterWatchHandlerClient, watchWatchClient.Recv) too"},

	{name: "pushgateway-healthy", server: "pushgateway", driver: pushgatewaySteady,
		why: "20 jobs replace their own groups; the set of groups is fixed"},
	{name: "pushgateway-unique-groups", server: "pushgateway", driver: pushgatewayUniqueGroups, leak: "heap",
		culprits: []string{
			"github.com/prometheus/pushgateway/handler.Push",
			"github.com/prometheus/pushgateway/storage.(*DiskMetricStore).processWriteRequest",
			"github.com/prometheus/pushgateway/storage.(*DiskMetricStore).SubmitWriteRequest",
			"github.com/prometheus/pushgateway/storage.(*DiskMetricStore).checkWriteRequest",
			"github.com/prometheus/pushgateway/storage.(*DiskMetricStore).loop",
			"github.com/prometheus/pushgateway/storage.sanitizeLabels",
			"github.com/prometheus/pushgateway/storage.newTimestampGauge",
		},
		why: "the DiskMetricStore keeps every grouping key's metric families forever; they are parsed (allocated) in " +
			"handler.Push and stored by processWriteRequest; and every push's consistency check (checkWriteRequest) " +
			"gathers a copy of all stored groups (sanitizeLabels, Gatherers.Gather), so the live heap at any moment " +
			"also holds a copy that grows with the groups: the heap diff's largest stack is that check"},

	{name: "alertmanager-healthy", server: "alertmanager", driver: alertmanagerSteady,
		why: "the same 50 alerts (five groups) re-sent every few seconds"},
	{name: "alertmanager-unique-groups", server: "alertmanager", driver: alertmanagerUniqueGroups, leak: "heap+goroutine",
		culprits: []string{
			"github.com/prometheus/alertmanager/dispatch.(*Dispatcher).processAlert",
			"github.com/prometheus/alertmanager/dispatch.newAggrGroup",
			"github.com/prometheus/alertmanager/dispatch.(*aggrGroup).run",
			"github.com/prometheus/alertmanager/dispatch.(*aggrGroup).insert",
			"github.com/prometheus/alertmanager/provider/mem.(*Alerts).Put",
			"github.com/prometheus/alertmanager/store.(*Alerts).Set",
			"github.com/prometheus/alertmanager/api/v2.(*API).postAlertsHandler",
			"github.com/prometheus/alertmanager/api/v2.OpenAPIAlertsToAlerts",
			"github.com/prometheus/alertmanager/api/v2.APILabelSetToModelLabelSet",
			"github.com/prometheus/alertmanager/dispatch.getGroupLabels",
		},
		why: "each new alertname opens an aggregation group (dispatch.newAggrGroup, one goroutine running " +
			"aggrGroup.run each) and every alert is stored in provider/mem until it ends an hour later"},

	{name: "prometheus-healthy", server: "prometheus", driver: prometheusSteady,
		why: "one scraped target with 400 fixed series every second"},
	{name: "prometheus-series-churn", server: "prometheus", driver: prometheusChurn, leak: "heap",
		culprits: []string{
			"github.com/prometheus/prometheus/tsdb.(*Head).getOrCreateWithID",
			"github.com/prometheus/prometheus/tsdb.(*Head).getOrCreate",
			"github.com/prometheus/prometheus/tsdb.newMemSeries",
			"github.com/prometheus/prometheus/tsdb.(*stripeSeries).getOrSet",
			"github.com/prometheus/prometheus/tsdb.seriesHashmap.set",
			"github.com/prometheus/prometheus/tsdb.(*memSeries).cutNewHeadChunk",
			"github.com/prometheus/prometheus/tsdb.(*memSeries).appendable",
			"github.com/prometheus/prometheus/tsdb.(*memSeries).append",
			"github.com/prometheus/prometheus/tsdb.(*headAppender).Append",
			"github.com/prometheus/prometheus/tsdb/index.(*MemPostings).addFor",
			"github.com/prometheus/prometheus/tsdb/index.(*MemPostings).Add",
			"github.com/prometheus/prometheus/scrape.(*scrapeLoop).append",
		},
		why: "a request ID in a label makes 40 new series per scrape; the TSDB head keeps each series " +
			"(memSeries, its label set, postings, head chunk) until head compaction hours later; the series are created " +
			"in Head.getOrCreateWithID (stripeSeries.getOrSet stores them), their labels are built in the scrape loop's " +
			"append; generic helpers (labels.Builder, chunkenc.NewXORChunk) are not accepted"},

	{name: "nats-healthy", server: "nats", driver: natsSteady,
		why: "a publisher and a subscriber on 50 fixed subjects"},
	{name: "nats-unique-subs", server: "nats", driver: natsUniqueSubs, leak: "heap",
		culprits: []string{
			"github.com/nats-io/nats-server/server.(*client).processSub",
			"github.com/nats-io/nats-server/server.(*client).processSubEx",
			"github.com/nats-io/nats-server/server.(*Sublist).Insert",
			"github.com/nats-io/nats-server/server.newNode",
			"github.com/nats-io/nats-server/server.newLevel",
		},
		why: "every SUB that is never UNSUBscribed stays in the client's subs map (client.processSub) and in " +
			"the account's subject tree (Sublist.Insert)"},
	{name: "nats-held-conns", server: "nats", driver: natsHeldConns, leak: "goroutine",
		culprits: []string{
			"github.com/nats-io/nats-server/server.(*client).readLoop",
			"github.com/nats-io/nats-server/server.(*client).writeLoop",
			"github.com/nats-io/nats-server/server.(*Server).createClient",
		},
		why: "every connection never closed keeps its readLoop and writeLoop goroutines, started by createClient"},

	{name: "influxdb-healthy", server: "influxdb", driver: influxdbSteady,
		why: "200 hosts reporting cpu: a fixed set of series, points only"},
	{name: "influxdb-unique-series", server: "influxdb", driver: influxdbUniqueSeries, leak: "heap",
		culprits: []string{
			"github.com/influxdata/influxdb/tsdb/index/inmem.(*Index).CreateSeriesListIfNotExists",
			"github.com/influxdata/influxdb/tsdb/index/inmem.(*measurement).AddSeries",
			"github.com/influxdata/influxdb/tsdb/index/inmem.newSeries",
			"github.com/influxdata/influxdb/tsdb/index/inmem.(*tagKeyValue).InsertSeriesIDByte",
			"github.com/influxdata/influxdb/tsdb/index/inmem.(*measurement).AddSeries",
			"github.com/influxdata/influxdb/tsdb/index/inmem.(*ShardIndex).CreateSeriesListIfNotExists",
			"github.com/influxdata/influxdb/tsdb.(*SeriesFile).CreateSeriesListIfNotExists",
			"github.com/influxdata/influxdb/tsdb.(*SeriesPartition).CreateSeriesListIfNotExists",
			"github.com/influxdata/influxdb/tsdb.(*SeriesIndex).Insert",
		},
		why: "a container ID tag makes every point a new series; the in-memory index (inmem, the default) and the " +
			"series file's in-memory key index keep every series until it is dropped; models.Tags.Clone and " +
			"pkg/rhh, where part of it is allocated, are generic helpers called from the index and not accepted"},

	{name: "caddy-healthy", server: "caddy", driver: caddySteady,
		why: "a keep-alive pool of four connections fetching a page"},
	{name: "caddy-held-conns", server: "caddy", driver: caddyHeldConns, leak: "goroutine",
		culprits: []string{
			"net/http.(*conn).serve",
			"net/http.(*Server).Serve",
		},
		why: "idle keep-alive connections a client never closes are kept for caddy's idle timeout (5 minutes): each " +
			"holds a net/http conn.serve goroutine; no caddy frame is on those stacks, so the server's accept loop or " +
			"net/http's conn.serve is the only honest name"},
}

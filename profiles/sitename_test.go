package profiles

import "testing"

func TestSiteNameSkipsGeneratedCode(t *testing.T) {
	own := OwnCodeFor("go.etcd.io/etcd")
	generated := map[string]bool{"go.etcd.io/etcd/etcdserver/etcdserverpb.(*InternalRaftRequest).Marshal": true}
	isOwn := func(fn string) bool { return own.Match(fn) && !generated[fn] }
	stack := []string{
		"runtime.mallocgc",
		"go.etcd.io/etcd/etcdserver/etcdserverpb.(*InternalRaftRequest).Marshal",
		"go.etcd.io/etcd/etcdserver.(*EtcdServer).processInternalRaftRequestOnce",
		"go.etcd.io/etcd/etcdserver.(*EtcdServer).Put",
	}
	fn, _, ok := SiteName(isOwn, false, len(stack), func(i int) string { return stack[i] })
	if want := "go.etcd.io/etcd/etcdserver.(*EtcdServer).processInternalRaftRequestOnce"; fn != want || !ok {
		t.Errorf("site %q (own %v), want the generated code's caller %q", fn, ok, want)
	}
	for file, want := range map[string]bool{
		"/build/src/go.etcd.io/etcd/etcdserver/etcdserverpb/raft_internal.pb.go": true,
		"gw/rpc.pb.gw.go":                                 true,
		"pkg/apis/zz_generated.deepcopy.go":               true,
		"easyjson_gen.go":                                 true,
		"/build/src/go.etcd.io/etcd/etcdserver/server.go": false,
		"pb.go/main.go":                                   false,
	} {
		if got := IsGeneratedFile(file); got != want {
			t.Errorf("IsGeneratedFile(%q) = %v, want %v", file, got, want)
		}
	}
}

// Command manytargets runs many sample services in one process, each on
// its own loopback port, for scripts/bench-collect.sh: hundreds of real
// profile targets without hundreds of processes. It writes their
// addresses as a Prometheus file_sd JSON file and runs until SIGINT or
// SIGTERM.
//
//	go run ./scripts/manytargets -n 50 -out targets.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leaklab/leaklab/internal/filesd"
	"github.com/leaklab/leaklab/leaks"
)

func main() {
	n := flag.Int("n", 50, "how many services to run")
	out := flag.String("out", "targets.json", "where to write the file_sd JSON")
	flag.Parse()
	if err := run(*n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "manytargets:", err)
		os.Exit(1)
	}
}

func run(n int, out string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	catalog := leaks.All()
	var servers []*leaks.Server
	byService := map[string]*filesd.Group{}
	var order []string
	for i := range n {
		// The fixed variants: without traffic they sit idle, as most
		// services of a fleet do between requests; the collector's load is
		// what is measured.
		svc := catalog[i%len(catalog)]
		srv, err := leaks.Start(ctx, svc, leaks.Options{Addr: "127.0.0.1:0", Fixed: true})
		if err != nil {
			return err
		}
		servers = append(servers, srv)
		g := byService[svc.Name]
		if g == nil {
			g = &filesd.Group{Labels: map[string]string{"job": "bench", "catalog": svc.Name}}
			byService[svc.Name] = g
			order = append(order, svc.Name)
		}
		g.Targets = append(g.Targets, srv.Addr().String())
	}
	var groups []filesd.Group
	for _, name := range order {
		groups = append(groups, *byService[name])
	}
	if err := filesd.WriteFile(out, groups); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "manytargets: %d services listening, targets in %s\n", n, out)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	return nil
}

package watch_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/leaklab/leaklab/scale"
)

func TestDebugOne(t *testing.T) {
	name := os.Getenv("DBG_SVC")
	if name == "" {
		t.Skip()
	}
	svc, _ := leaks.Lookup(name)
	url := testbin.StartService(t, name, os.Getenv("DBG_FIXED") == "1").URL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go scale.Load(ctx, scale.LoadOptions{URL: url + svc.Endpoints[0].Path, Method: svc.Endpoints[0].Method, Rate: svc.Rate, Connections: 16, Duration: 40 * time.Second})
	rep, err := watch.Run(context.Background(), url, watch.Options{Every: 2 * time.Second, For: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Suspects {
		fmt.Println("SUSPECT", s.Kind, s.Confidence, s.Function, s.Stack)
	}
	for _, s := range rep.TopGrowing {
		fmt.Printf("%s %s %s %.0f p=%.2g late=%.2g sep=%v %v..%v\n", s.Kind, s.Function, s.WaitState, s.GrowthPerMinute, s.Evidence.P, s.Evidence.LateP, s.Evidence.Separated, s.Evidence.First, s.Evidence.Last)
	}
}

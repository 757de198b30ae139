// watch-latency measures how long a put takes to reach the watchers of its key: the time from just
// before the Put call to the arrival of the event at each watcher. (etcd 3.4's `benchmark watch-latency`
// starts its clock when the put's response arrives, so a server that delivers events before responses
// reads as ~0 there.) Puts are paced at -rate per second; each carries its sequence number in its value.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	watchers := flag.Int("watchers", 100, "watchers of the key")
	conns := flag.Int("conns", 10, "client connections the watchers are spread over")
	puts := flag.Int("puts", 1000, "puts to time")
	rate := flag.Int("rate", 100, "puts per second")
	valSize := flag.Int("val-size", 256, "value size in bytes (at least 8)")
	flag.Parse()
	if *valSize < 8 {
		*valSize = 8
	}
	eps := strings.Split(*endpoints, ",")
	dial := func() *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		return c
	}
	clients := make([]*clientv3.Client, *conns)
	for i := range clients {
		clients[i] = dial()
	}
	putter := dial()
	key := fmt.Sprintf("watch-latency-%d", time.Now().UnixNano())
	started := make([]int64, *puts)

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, *puts**watchers)
	var ready, done sync.WaitGroup
	ready.Add(*watchers)
	done.Add(*watchers)
	for w := 0; w < *watchers; w++ {
		wch := clients[w%*conns].Watch(ctx, key, clientv3.WithCreatedNotify())
		go func() {
			defer done.Done()
			mine := make([]time.Duration, 0, *puts)
			seen := 0
			created := false
			for resp := range wch {
				now := time.Now().UnixNano()
				if resp.Created && !created {
					created = true
					ready.Done()
				}
				for _, ev := range resp.Events {
					seq := binary.BigEndian.Uint64(ev.Kv.Value[:8])
					mine = append(mine, time.Duration(now-atomic.LoadInt64(&started[seq])))
					seen++
				}
				if seen == *puts {
					break
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	ready.Wait()

	value := make([]byte, *valSize)
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	for i := 0; i < *puts; i++ {
		<-tick.C
		binary.BigEndian.PutUint64(value, uint64(i))
		atomic.StoreInt64(&started[i], time.Now().UnixNano())
		if _, err := putter.Put(context.Background(), key, string(value)); err != nil {
			fmt.Fprintln(os.Stderr, "put:", err)
			os.Exit(1)
		}
	}
	tick.Stop()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "some events did not arrive within 10 s")
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	fmt.Printf("events %d of %d  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
		len(latencies), *puts**watchers, pct(0.5), pct(0.9), pct(0.99), pct(1))
}

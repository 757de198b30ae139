// lease-grant measures LeaseGrant throughput: -clients goroutines over -conns connections grant
// -total leases between them as fast as the server answers (etcd 3.4's benchmark tool has no
// lease-grant command). The leases are revoked afterwards, outside the timing.
package main

import (
	"context"
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
	conns := flag.Int("conns", 10, "client connections")
	clients := flag.Int("clients", 100, "concurrent granters, spread over the connections")
	total := flag.Int("total", 20000, "leases to grant")
	ttl := flag.Int64("ttl", 600, "TTL of each lease in seconds")
	flag.Parse()
	eps := strings.Split(*endpoints, ",")
	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		cs[i] = c
	}
	var next int64 = -1
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, *total)
	ids := make([]clientv3.LeaseID, 0, *total)
	var failed int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < *clients; g++ {
		wg.Add(1)
		go func(c *clientv3.Client) {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) < int64(*total) {
				t := time.Now()
				resp, err := c.Grant(context.Background(), *ttl)
				took := time.Since(t)
				if err != nil {
					atomic.AddInt64(&failed, 1)
					continue
				}
				mu.Lock()
				latencies = append(latencies, took)
				ids = append(ids, resp.ID)
				mu.Unlock()
			}
		}(cs[g%*conns])
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	fmt.Printf("granted %d (%d failed) in %.2f s: %.0f grants/s  p50 %.3f ms  p99 %.3f ms\n",
		len(latencies), failed, elapsed.Seconds(), float64(len(latencies))/elapsed.Seconds(), pct(0.5), pct(0.99))
	for i, id := range ids {
		cs[i%*conns].Revoke(context.Background(), id)
	}
}

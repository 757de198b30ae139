#!/bin/bash
# Compares two builds of etcd-ts (e.g. before and after a change) with etcd's own Go load generator
# (../shared/bench/build-etcd-benchmark.sh): one member on SQLite per run, the builds alternating.
# usage: bench/compare-builds.sh ROUNDS CHECKOUT_A CHECKOUT_B   (each checkout built: npm run build)
set -u
B=${ETCD_BENCHMARK:-$(dirname "$0")/../../shared/bench/build-etcd-benchmark.sh}
[ -x "$B" ] && [[ "$B" != *.sh ]] || B=$(bash "$B")
ROUNDS=${1:-3}; shift
run_one() { # dir label
  local dir=$1 data; data=$(mktemp -d)
  node $dir/apps/server/dist/main.js --data-dir $data --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster default=http://127.0.0.1:23800 > $data.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do etcdctl --endpoints=127.0.0.1:23790 endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  local p1 p100 r100
  p100=$($B --endpoints=127.0.0.1:23790 --conns=10 --clients=100 put --key-size=8 --sequential-keys --key-space-size=100000 --total=20000 --val-size=256 2>/dev/null | awk '/Requests\/sec/{print $2}')
  p1=$($B --endpoints=127.0.0.1:23790 --conns=1 --clients=1 put --key-size=8 --sequential-keys --key-space-size=100000 --total=1000 --val-size=256 2>/dev/null | awk '/Requests\/sec/{print $2}')
  r100=$($B --endpoints=127.0.0.1:23790 --conns=10 --clients=100 range k --consistency=l --total=20000 2>/dev/null | awk '/Requests\/sec/{print $2}')
  kill $pid; wait $pid 2>/dev/null; rm -rf $data $data.log
  echo "$2 put100=$p100 put1=$p1 rangeL100=$r100"
}
for r in $(seq $ROUNDS); do for d in "$@"; do run_one $d $d; done; done

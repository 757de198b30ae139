#!/bin/bash
# Compares two builds of etcd-ts (e.g. before and after a change) with etcd's own Go load generator
# (../shared/bench/build-etcd-benchmark.sh): SQLite engine, a fresh data dir per run, the builds
# alternating. MEMBERS=3 runs a three-member cluster (the load spread over all three endpoints);
# ENGINE=lmdb runs the LMDB engine instead.
# usage: [MEMBERS=1|3] [ENGINE=sqlite|lmdb] bench/compare-builds.sh ROUNDS CHECKOUT_A CHECKOUT_B   (each checkout built: npm run build)
set -u
B=${ETCD_BENCHMARK:-$(dirname "$0")/../../shared/bench/build-etcd-benchmark.sh}
[ -x "$B" ] && [[ "$B" != *.sh ]] || B=$(bash "$B")
ROUNDS=${1:-3}; shift
MEMBERS=${MEMBERS:-1}
ENGINE=${ENGINE:-sqlite}
run_one() { # dir label
  local dir=$1 data cluster="" endpoints="" pids=() i
  data=$(mktemp -d)
  for i in $(seq $MEMBERS); do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((23800 + i))"; endpoints+="${endpoints:+,}127.0.0.1:$((23790 + i))"; done
  for i in $(seq $MEMBERS); do
    node $dir/apps/server/dist/main.js --name m$i --data-dir $data/m$i --listen-client-urls http://127.0.0.1:$((23790 + i)) \
      --advertise-client-urls http://127.0.0.1:$((23790 + i)) --listen-peer-urls http://127.0.0.1:$((23800 + i)) \
      --initial-advertise-peer-urls http://127.0.0.1:$((23800 + i)) --initial-cluster $cluster --storage-engine $ENGINE > $data/m$i.log 2>&1 &
    pids+=($!)
  done
  for i in $(seq 150); do etcdctl --endpoints=$endpoints endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  local p1 p100 r100
  p100=$($B --endpoints=$endpoints --conns=10 --clients=100 put --key-size=8 --sequential-keys --key-space-size=100000 --total=20000 --val-size=256 2>/dev/null | awk '/Requests\/sec/{print $2}')
  p1=$($B --endpoints=$endpoints --conns=1 --clients=1 put --key-size=8 --sequential-keys --key-space-size=100000 --total=1000 --val-size=256 2>/dev/null | awk '/Requests\/sec/{print $2}')
  r100=$($B --endpoints=$endpoints --conns=10 --clients=100 range k --consistency=l --total=20000 2>/dev/null | awk '/Requests\/sec/{print $2}')
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null; rm -rf $data
  echo "$2 members=$MEMBERS engine=$ENGINE put100=$p100 put1=$p1 rangeL100=$r100 load=$(cut -d' ' -f1 /proc/loadavg)"
}
for r in $(seq $ROUNDS); do for d in "$@"; do run_one $d $d; done; done

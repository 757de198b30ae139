#!/bin/bash
# One million keys: loads 1,000,000 keys of 256-byte values into one member with etcd's Go benchmark
# tool (10 connections × 100 clients), then reports the server's memory, a range over every key through
# etcdctl (default keepalive: a member that stops answering HTTP/2 pings for ~8 s loses the request) and
# the slowest of the puts another client makes every 100 ms meanwhile, and the time a restart takes
# until the member answers.
# usage: bench/million-keys.sh etcd|sqlite|lmdb [KEYS]      (run `npm run build` first for etcd-ts)
set -u
TARGET=${1:?usage: bench/million-keys.sh etcd|sqlite|lmdb [KEYS]}
KEYS=${2:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${ETCD_BENCHMARK:-$ROOT/../shared/bench/build-etcd-benchmark.sh}
[ -x "$B" ] && [[ "$B" != *.sh ]] || B=$(bash "$B")
P=${PORT:-23790}
WORK=$(mktemp -d)
PID=
start() {
  local args=(--data-dir "$WORK/data" --listen-client-urls "http://127.0.0.1:$P" --advertise-client-urls "http://127.0.0.1:$P"
    --listen-peer-urls "http://127.0.0.1:$((P + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((P + 1))"
    --initial-cluster "default=http://127.0.0.1:$((P + 1))" --quota-backend-bytes 8589934592)
  if [ "$TARGET" = etcd ]; then
    etcd "${args[@]}" >>"$WORK/log" 2>&1 &
  else
    node "$ROOT/apps/server/dist/main.js" --storage-engine "$TARGET" "${args[@]}" >>"$WORK/log" 2>&1 &
  fi
  PID=$!
  local t0=$(date +%s%N)
  for _ in $(seq 600); do etcdctl --endpoints "127.0.0.1:$P" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
  echo "ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }
trap 'stop; rm -rf "$WORK"' EXIT
rss() { awk '/VmRSS|VmHWM/{printf "%s %d MB  ", $1, $2/1024}' "/proc/$PID/status"; }

echo "== $TARGET, $KEYS keys"
start
t0=$(date +%s%N)
"$B" --endpoints "127.0.0.1:$P" --conns 10 --clients 100 put --total "$KEYS" --key-space-size "$KEYS" --sequential-keys \
  --key-size 16 --val-size 256 2>/dev/null | grep "Requests/sec"
echo "load $(( ($(date +%s%N) - t0) / 1000000 )) ms; $(rss)"
sleep 5
echo "settled: $(rss)"

etcdctl --endpoints "127.0.0.1:$P" --command-timeout 300s get "" --prefix --count-only -w json | grep -o '"count":[0-9]*'
( t0=$(date +%s%N)
  if etcdctl --endpoints "127.0.0.1:$P" --command-timeout 300s get "" --prefix >"$WORK/all" 2>"$WORK/range.err"; then
    echo "range over every key: $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(stat -c %s "$WORK/all") bytes printed"
  else
    echo "range over every key FAILED after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(grep -v '^{' "$WORK/range.err" | tail -1)"
  fi ) &
RANGE=$!
slowest=0
failed=0
while kill -0 $RANGE 2>/dev/null; do
  t0=$(date +%s%N)
  etcdctl --endpoints "127.0.0.1:$P" put probe x >/dev/null 2>&1 || failed=$((failed + 1))
  took=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ $took -gt $slowest ] && slowest=$took
  sleep 0.1
done
wait $RANGE
echo "another client's puts meanwhile: slowest ${slowest} ms (etcdctl start included), ${failed} failed"
kill -0 "$PID" 2>/dev/null && echo "after the range: $(rss)" || echo "SERVER DIED"
stop
echo -n "restart: "
start
echo "restarted: $(rss)"
du -sh "$WORK/data" | cut -f1 | sed 's/^/data dir /'

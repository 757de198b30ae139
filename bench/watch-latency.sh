#!/bin/bash
# Watch put→event latency, etcd 3.4 against etcd-ts: bench/watch-latency/main.go (built here against
# Debian's clientv3 3.4.23, as ../shared/bench/build-etcd-benchmark.sh builds etcd's tool) times each
# event from just before its Put call, at every watcher. One member at a time, alternating, a fresh data
# dir per run; prints one line per run.
# usage: [ROUNDS=3] [WATCHERS=100] [CONNS=10] [PUTS=1000] [RATE=100] bench/watch-latency.sh [etcd] [sqlite] [lmdb]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(etcd sqlite lmdb)
TOOL=${XDG_CACHE_HOME:-$HOME/.cache}/etcd-ts/watch-latency
# The Go toolchain and clientv3's sources come from Debian, as for etcd's benchmark tool.
bash "$ROOT/../shared/bench/build-etcd-benchmark.sh" >/dev/null
if [ ! -x "$TOOL" ] || [ "$ROOT/bench/watch-latency/main.go" -nt "$TOOL" ]; then
  gopath=$(mktemp -d)
  mkdir -p "$gopath/src/etcd-ts/watch-latency"
  cp "$ROOT/bench/watch-latency/main.go" "$gopath/src/etcd-ts/watch-latency/"
  mkdir -p "$(dirname "$TOOL")"
  (cd "$gopath/src/etcd-ts/watch-latency" && GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off go build -o "$TOOL" .)
  rm -rf "$gopath"
fi
P=${PORT:-23790}
run() { # target
  local data pid
  data=$(mktemp -d)
  local args=(--data-dir "$data/d" --listen-client-urls "http://127.0.0.1:$P" --advertise-client-urls "http://127.0.0.1:$P"
    --listen-peer-urls "http://127.0.0.1:$((P + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((P + 1))"
    --initial-cluster "default=http://127.0.0.1:$((P + 1))")
  if [ "$1" = etcd ]; then etcd "${args[@]}" >"$data/log" 2>&1 &
  else node "$ROOT/apps/server/dist/main.js" --storage-engine "$1" "${args[@]}" >"$data/log" 2>&1 & fi
  pid=$!
  for _ in $(seq 150); do etcdctl --endpoints "127.0.0.1:$P" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  printf '%-7s %s\n' "$1" "$("$TOOL" --endpoints "127.0.0.1:$P" --watchers "${WATCHERS:-100}" --conns "${CONNS:-10}" \
    --puts "${PUTS:-1000}" --rate "${RATE:-100}" 2>&1 | tail -1)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
echo "watchers=${WATCHERS:-100} conns=${CONNS:-10} puts=${PUTS:-1000} rate=${RATE:-100}/s"
for _ in $(seq "$ROUNDS"); do for t in "${TARGETS[@]}"; do run "$t"; done; done

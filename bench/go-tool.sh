#!/bin/bash
# Runs one of the Go tools under bench/ (watch-latency, lease-grant) against etcd 3.4 and etcd-ts, one
# member at a time, alternating, a fresh data dir per run; one line per run. The tools are built against
# Debian's clientv3 3.4.23, as ../shared/bench/build-etcd-benchmark.sh builds etcd's own tool.
# usage: [ROUNDS=3] bench/go-tool.sh TOOL [etcd] [sqlite] [lmdb] [-- TOOL-FLAGS...]
#   e.g. bench/go-tool.sh watch-latency etcd sqlite lmdb -- --watchers 100 --conns 10 --puts 1000 --rate 100
#        bench/go-tool.sh lease-grant etcd sqlite -- --conns 10 --clients 100 --total 20000
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=${1:?usage: bench/go-tool.sh TOOL [etcd] [sqlite] [lmdb] [-- TOOL-FLAGS...]}
shift
[ -f "$ROOT/bench/$NAME/main.go" ] || { echo "no tool bench/$NAME/main.go" >&2; exit 2; }
TARGETS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do TARGETS+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(etcd sqlite lmdb)
ROUNDS=${ROUNDS:-3}
TOOL=${XDG_CACHE_HOME:-$HOME/.cache}/etcd-ts/$NAME
# The Go toolchain and clientv3's sources come from Debian, as for etcd's benchmark tool.
bash "$ROOT/../shared/bench/build-etcd-benchmark.sh" >/dev/null
if [ ! -x "$TOOL" ] || [ "$ROOT/bench/$NAME/main.go" -nt "$TOOL" ]; then
  gopath=$(mktemp -d)
  mkdir -p "$gopath/src/etcd-ts/$NAME"
  cp "$ROOT/bench/$NAME/main.go" "$gopath/src/etcd-ts/$NAME/"
  mkdir -p "$(dirname "$TOOL")"
  (cd "$gopath/src/etcd-ts/$NAME" && GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off go build -o "$TOOL" .)
  rm -rf "$gopath"
fi
P=${PORT:-23790}
run() { # target, then the tool's flags
  local target=$1 data pid
  shift
  data=$(mktemp -d)
  local args=(--data-dir "$data/d" --listen-client-urls "http://127.0.0.1:$P" --advertise-client-urls "http://127.0.0.1:$P"
    --listen-peer-urls "http://127.0.0.1:$((P + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((P + 1))"
    --initial-cluster "default=http://127.0.0.1:$((P + 1))")
  if [ "$target" = etcd ]; then etcd "${args[@]}" >"$data/log" 2>&1 &
  else node "$ROOT/apps/server/dist/main.js" --storage-engine "$target" "${args[@]}" >"$data/log" 2>&1 & fi
  pid=$!
  for _ in $(seq 150); do etcdctl --endpoints "127.0.0.1:$P" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  printf '%-7s %s\n' "$target" "$("$TOOL" --endpoints "127.0.0.1:$P" "$@" 2>&1 | tail -1)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
echo "$NAME $*"
for _ in $(seq "$ROUNDS"); do for t in "${TARGETS[@]}"; do run "$t" "$@"; done; done

#!/usr/bin/env node
/**
 * `npm run bench`: etcd's own Go load generator (tools/benchmark 3.4.23, built by
 * ../shared/bench/build-etcd-benchmark.sh) against the real etcd 3.4 and etcd-ts (SQLite and LMDB),
 * one server at a time, alternating servers within each round, a fresh data dir per server start.
 * Medians, spread and etcd-ts ÷ etcd ratios go into docs/performance.md between the go-bench markers;
 * every run's raw numbers go to bench/results/go-bench-<date>.json.
 *
 * usage: node bench/run.mjs [--quick] [--rounds N] [--only REGEX] [--engines sqlite,lmdb] [--members 1,3]
 *                           [--totals 1000,20000,40000] [--warmup 3000] [--warmup-seconds 5] [--no-write]
 *
 * Before each measured run the tool runs the same workload against the freshly started server, unmeasured,
 * in runs of --warmup requests until at least --warmup-seconds have passed (watch-latency: one run of at
 * most 200 puts): a Node.js server runs its first several thousand requests through code its JIT has not
 * compiled yet — at one client that takes seconds — which says nothing about a server that has been up.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DOC = join(ROOT, "docs/performance.md");
const MARK_START = "<!-- go-bench:start -->";
const MARK_END = "<!-- go-bench:end -->";
const SECTION_HEADING = "## etcd's Go benchmark: etcd-ts against etcd 3.4";
/** Member i (1-based) listens for clients on CLIENT_PORT_BASE + i and for peers on PEER_PORT_BASE + i. */
const CLIENT_PORT_BASE = 24370;
const PEER_PORT_BASE = 25370;
/** /proc/<pid>/stat counts CPU time in clock ticks; 100 per second on Linux. */
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const VALUE_SIZE = 256;

// ---------------------------------------------------------------- command line

function parseArgs(argv) {
  const opts = {
    quick: false,
    rounds: undefined,
    only: undefined,
    engines: ["sqlite", "lmdb"],
    members: [1, 3],
    totals: undefined,
    warmup: undefined,
    warmupSeconds: undefined,
    write: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--quick":
        opts.quick = true;
        break;
      case "--rounds":
        opts.rounds = Number(value());
        break;
      case "--only":
        opts.only = new RegExp(value());
        break;
      case "--engines":
        opts.engines = value().split(",").filter(Boolean);
        break;
      case "--members":
        opts.members = value().split(",").map(Number);
        break;
      case "--totals":
        opts.totals = value().split(",").map(Number);
        break;
      case "--warmup":
        opts.warmup = Number(value());
        break;
      case "--warmup-seconds":
        opts.warmupSeconds = Number(value());
        break;
      case "--no-write":
        opts.write = false;
        break;
      case "-h":
      case "--help":
        console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").match(/usage:[^*]*\*[^*]*/)[0]);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag ${argv[i]} (see --help)`);
    }
  }
  for (const e of opts.engines) if (e !== "sqlite" && e !== "lmdb") throw new Error(`unknown engine ${e}`);
  for (const m of opts.members) if (m !== 1 && m !== 3) throw new Error(`--members takes 1 and/or 3, not ${m}`);
  if (opts.quick) {
    opts.engines = opts.engines.filter((e) => e === "sqlite");
    if (opts.engines.length === 0) opts.engines = ["sqlite"];
  }
  opts.rounds ??= opts.quick ? 3 : 5;
  if (!(opts.rounds >= 1)) throw new Error("--rounds must be ≥ 1");
  opts.totals ??= opts.quick ? [300, 5000, 10000] : [1000, 20000, 40000];
  opts.warmup ??= opts.quick ? 1000 : 3000;
  if (!(opts.warmup >= 0)) throw new Error("--warmup must be ≥ 0");
  opts.warmupSeconds ??= opts.quick ? 2 : 5;
  if (!(opts.warmupSeconds >= 0)) throw new Error("--warmup-seconds must be ≥ 0");
  if (opts.totals.length !== 3 || opts.totals.some((t) => !(t > 0)))
    throw new Error("--totals takes three numbers: for 1×1, 10×100 and 100×1000");
  return opts;
}

// ---------------------------------------------------------------- the matrix

const SHAPES = [
  { conns: 1, clients: 1 },
  { conns: 10, clients: 100 },
  { conns: 100, clients: 1000 },
];

const WORKLOADS = [
  {
    id: "put",
    args: () => ["put", `--key-size=8`, `--val-size=${VALUE_SIZE}`, "--sequential-keys", "--key-space-size=100000"],
  },
  { id: "txn-put", args: () => ["txn-put", `--key-size=8`, `--val-size=${VALUE_SIZE}`, "--key-space-size=100000"] },
  { id: "range-l", args: () => ["range", "k", "--consistency=l"], prepopulate: true },
  { id: "range-s", args: () => ["range", "k", "--consistency=s"], prepopulate: true },
];

function buildCells(opts) {
  const cells = [];
  for (const members of [1, 3]) {
    for (const w of WORKLOADS) {
      SHAPES.forEach((s, i) => {
        cells.push({
          name: `${w.id} ${s.conns}x${s.clients} m${members}`,
          workload: w.id,
          members,
          conns: s.conns,
          clients: s.clients,
          args: [...w.args(), `--total=${opts.totals[i]}`],
          total: opts.totals[i],
          prepopulate: w.prepopulate === true,
          throughput: true,
        });
      });
    }
  }
  const watchTotal = opts.quick ? 200 : 1000;
  cells.push({
    name: "watch-latency 1x1 m1",
    workload: "watch-latency",
    members: 1,
    conns: 1,
    clients: 1,
    // 3.4's watch-latency calls its put count --total (later releases renamed it --put-total).
    args: ["watch-latency", `--total=${watchTotal}`, "--put-rate=100", `--val-size=${VALUE_SIZE}`],
    total: watchTotal,
    prepopulate: false,
    // The puts are rate-limited, so Requests/sec only echoes --put-rate; the latencies are the result.
    throughput: false,
  });
  const leaseTotal = opts.totals[1];
  cells.push({
    name: "lease-keepalive 10x100 m1",
    workload: "lease-keepalive",
    members: 1,
    conns: 10,
    clients: 100,
    args: ["lease-keepalive", `--total=${leaseTotal}`],
    total: leaseTotal,
    prepopulate: false,
    throughput: true,
  });

  const quickNames = new Set(["put 1x1 m1", "put 10x100 m1", "range-l 10x100 m1"]);
  return cells
    .filter((c) => opts.members.includes(c.members))
    .filter((c) => !opts.quick || quickNames.has(c.name))
    .filter((c) => opts.only === undefined || opts.only.test(c.name));
}

function buildServers(opts) {
  const servers = [{ id: "etcd", label: "etcd 3.4", command: "etcd", extra: [] }];
  const mainJs = join(ROOT, "apps/server/dist/main.js");
  for (const engine of opts.engines) {
    if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: npm run build first`);
    servers.push({
      id: `etcd-ts-${engine}`,
      label: `etcd-ts ${engine}`,
      command: process.execPath,
      extra: [mainJs, "--storage-engine", engine],
    });
  }
  return servers;
}

// ---------------------------------------------------------------- processes

/** Every server and load-generator process still running and every data dir not yet removed, for cleanup on exit. */
const live = { children: new Set(), dirs: new Set() };

function cleanupSync() {
  for (const child of live.children) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.children.clear();
  for (const dir of live.dirs) rmSync(dir, { recursive: true, force: true });
  live.dirs.clear();
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when nothing listens on 127.0.0.1:port, so a server started next can bind it. */
function portFree(port) {
  return new Promise((r) => {
    const s = createServer();
    s.once("error", () => r(false));
    s.listen(port, "127.0.0.1", () => s.close(() => r(true)));
  });
}

async function waitPortsFree(ports) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const free = await Promise.all(ports.map(portFree));
    if (free.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`ports still in use: ${ports.filter((_, i) => !free[i]).join(", ")}`);
    await sleep(200);
  }
}

function etcdctl(endpoints, args, input) {
  return spawnSync("etcdctl", [`--endpoints=${endpoints.join(",")}`, "--command-timeout=2s", ...args], {
    input,
    encoding: "utf8",
  });
}

/** Starts `members` processes of one server on fresh data dirs and waits until every member is healthy. */
async function startCluster(server, members) {
  const dataRoot = mkdtempSync(join(tmpdir(), "etcd-go-bench-"));
  live.dirs.add(dataRoot);
  const specs = [];
  for (let i = 1; i <= members; i++) {
    specs.push({
      name: `m${i}`,
      clientPort: CLIENT_PORT_BASE + i,
      peerPort: PEER_PORT_BASE + i,
      dataDir: join(dataRoot, `m${i}`),
      log: join(dataRoot, `m${i}.log`),
    });
  }
  await waitPortsFree(specs.flatMap((s) => [s.clientPort, s.peerPort]));
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(",");
  const procs = specs.map((s) => {
    const client = `http://127.0.0.1:${s.clientPort}`;
    const peer = `http://127.0.0.1:${s.peerPort}`;
    const child = spawn(
      server.command,
      [
        ...server.extra,
        "--name",
        s.name,
        "--data-dir",
        s.dataDir,
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-token",
        "go-bench",
        "--initial-cluster-state",
        "new",
        "--log-level",
        "error",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    live.children.add(child);
    const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
    exited.then(() => live.children.delete(child));
    return { spec: s, child, exited, stderr: () => stderr };
  });
  const endpoints = specs.map((s) => `127.0.0.1:${s.clientPort}`);
  const cluster = { server, members, endpoints, procs, dataRoot };

  const deadline = Date.now() + 40_000;
  for (;;) {
    const dead = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead) {
      await stopCluster(cluster);
      throw new Error(`${server.label} ${dead.spec.name} exited while starting:\n${dead.stderr()}`);
    }
    if (endpoints.every((e) => etcdctl([e], ["endpoint", "health"]).status === 0)) break;
    if (Date.now() > deadline) {
      const tails = procs.map((p) => `${p.spec.name}: ${p.stderr().slice(-600)}`).join("\n");
      await stopCluster(cluster);
      throw new Error(`${server.label} ×${members} not healthy in 40 s\n${tails}`);
    }
    await sleep(150);
  }
  return cluster;
}

async function stopCluster(cluster) {
  await Promise.all(
    cluster.procs.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill("SIGTERM");
      const timedOut = await Promise.race([p.exited.then(() => false), sleep(8000).then(() => true)]);
      if (timedOut) {
        p.child.kill("SIGKILL");
        await p.exited;
      }
    }),
  );
  rmSync(cluster.dataRoot, { recursive: true, force: true });
  live.dirs.delete(cluster.dataRoot);
}

/** utime + stime of a process in microseconds, or NaN once it has gone. */
function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces; fields after it are space-separated.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

function clusterCpuMicros(cluster) {
  return cluster.procs.reduce((sum, p) => sum + cpuMicros(p.child.pid), 0);
}

function runTool(binary, args, timeoutMs) {
  return new Promise((resolvePromise) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    live.children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-20000);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      live.children.delete(child);
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Requests/sec, the 50 % and 99 % latencies (ms) and the error count from tools/benchmark's report. */
function parseReport(stdout) {
  const num = (re) => {
    const m = stdout.match(re);
    return m ? Number(m[1]) : NaN;
  };
  let errors = 0;
  const errorBlock = stdout.split("Error distribution:")[1];
  if (errorBlock) for (const m of errorBlock.matchAll(/^\s*\[(\d+)\]/gm)) errors += Number(m[1]);
  return {
    rps: num(/Requests\/sec:\s*([-+\d.eE]+)/),
    p50ms: num(/^\s*50% in ([-+\d.eE]+) secs/m) * 1000,
    p99ms: num(/^\s*99% in ([-+\d.eE]+) secs/m) * 1000,
    errors,
  };
}

async function runCell(binary, cell, server, warmup, warmupSeconds) {
  const cluster = await startCluster(server, cell.members);
  try {
    if (cell.prepopulate) {
      const put = etcdctl(cluster.endpoints, ["put", "k", "v".repeat(VALUE_SIZE)]);
      if (put.status !== 0) throw new Error(`pre-populating k failed: ${put.stderr}`);
    }
    const common = ["--precise", `--endpoints=${cluster.endpoints.join(",")}`, `--conns=${cell.conns}`, `--clients=${cell.clients}`];
    const args = [...common, ...cell.args];
    const watch = cell.workload === "watch-latency";
    const warmupTotal = watch ? Math.min(warmup, 200) : warmup;
    const warmupUntil = performance.now() + (watch ? 0 : warmupSeconds * 1000);
    if (warmupTotal > 0) {
      do {
        const warm = await runTool(
          binary,
          [...common, ...cell.args.map((a) => (a.startsWith("--total=") ? `--total=${warmupTotal}` : a))],
          300_000,
        );
        if (warm.code !== 0)
          throw new Error(`warm-up failed: exit ${warm.code ?? warm.signal}: ${warm.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      } while (performance.now() < warmupUntil);
    }
    const load1Start = loadavg()[0];
    const cpuStart = clusterCpuMicros(cluster);
    const started = performance.now();
    const out = await runTool(binary, args, 300_000);
    const wallSeconds = (performance.now() - started) / 1000;
    const cpuEnd = clusterCpuMicros(cluster);
    const load1End = loadavg()[0];
    const report = parseReport(out.stdout);
    const ok = out.code === 0 && Number.isFinite(report.rps);
    return {
      ok,
      ...report,
      wallSeconds,
      serverCpuMicrosPerRequest: (cpuEnd - cpuStart) / cell.total,
      load1Start,
      load1End,
      ...(ok ? {} : { failure: `exit ${out.code ?? out.signal}: ${out.stderr.trim().split("\n").slice(-3).join(" | ")}` }),
    };
  } finally {
    await stopCluster(cluster);
  }
}

// ---------------------------------------------------------------- statistics and tables

function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(runs) {
  const ok = runs.filter((r) => r.ok);
  const pick = (k) => ok.map((r) => r[k]);
  return {
    runs: runs.length,
    failed: runs.length - ok.length,
    rps: median(pick("rps")),
    rpsMin: Math.min(...pick("rps")),
    rpsMax: Math.max(...pick("rps")),
    p50ms: median(pick("p50ms")),
    p99ms: median(pick("p99ms")),
    cpuUs: median(pick("serverCpuMicrosPerRequest")),
    errors: median(pick("errors")),
    load1Min: Math.min(...runs.flatMap((r) => [r.load1Start, r.load1End])),
    load1Max: Math.max(...runs.flatMap((r) => [r.load1Start, r.load1End])),
  };
}

function fmtCount(x) {
  if (!Number.isFinite(x)) return "—";
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3);
}

function fmtMs(x) {
  if (!Number.isFinite(x)) return "—";
  return x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toFixed(3);
}

function fmtRatio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "—";
}

function failedNote(s) {
  return s.failed > 0 ? ` (${s.failed}/${s.runs} failed)` : "";
}

function renderTables(cells, servers, results) {
  const [etcd, ...tsServers] = servers;
  const stat = (cell, server) => summarize(results[cell.name]?.[server.id] ?? []);
  const lines = [];

  const head = ["cell (workload conns×clients members)", `${etcd.label} req/s (min–max)`];
  for (const s of tsServers) head.push(`${s.label} req/s (min–max)`, "÷ etcd");
  lines.push("Throughput (median requests/s over the rounds; ÷ etcd above 1× means etcd-ts is faster):", "");
  lines.push(`| ${head.join(" | ")} |`, `| --- |${" ---: |".repeat(head.length - 1)}`);
  for (const cell of cells.filter((c) => c.throughput)) {
    const e = stat(cell, etcd);
    const row = [cell.name, `${fmtCount(e.rps)} (${fmtCount(e.rpsMin)}–${fmtCount(e.rpsMax)})${failedNote(e)}`];
    for (const s of tsServers) {
      const t = stat(cell, s);
      row.push(`${fmtCount(t.rps)} (${fmtCount(t.rpsMin)}–${fmtCount(t.rpsMax)})${failedNote(t)}`, fmtRatio(t.rps, e.rps));
    }
    lines.push(`| ${row.join(" | ")} |`);
  }

  const latHead = ["cell", `${etcd.label} p50 / p99 ms`];
  for (const s of tsServers) latHead.push(`${s.label} p50 / p99 ms`, "p99 ÷ etcd");
  lines.push("", "Latency (medians of each round's 50th and 99th percentile; p99 ÷ etcd below 1× means etcd-ts is faster):", "");
  lines.push(`| ${latHead.join(" | ")} |`, `| --- |${" ---: |".repeat(latHead.length - 1)}`);
  for (const cell of cells) {
    const e = stat(cell, etcd);
    const row = [cell.name, `${fmtMs(e.p50ms)} / ${fmtMs(e.p99ms)}`];
    for (const s of tsServers) {
      const t = stat(cell, s);
      row.push(`${fmtMs(t.p50ms)} / ${fmtMs(t.p99ms)}`, fmtRatio(t.p99ms, e.p99ms));
    }
    lines.push(`| ${row.join(" | ")} |`);
  }

  const cpuHead = ["cell", ...servers.map((s) => `${s.label} server CPU µs/req`), "load average (1 min) during the runs"];
  lines.push("", "Server CPU time per request (utime + stime of all members, median) and machine load:", "");
  lines.push(`| ${cpuHead.join(" | ")} |`, `| --- |${" ---: |".repeat(cpuHead.length - 1)}`);
  for (const cell of cells) {
    const all = servers.map((s) => stat(cell, s));
    const lo = Math.min(...all.map((s) => s.load1Min));
    const hi = Math.max(...all.map((s) => s.load1Max));
    const load = Number.isFinite(lo) ? `${lo.toFixed(1)}–${hi.toFixed(1)}` : "—";
    lines.push(`| ${[cell.name, ...all.map((s) => fmtCount(s.cpuUs)), load].join(" | ")} |`);
  }
  return lines.join("\n");
}

function writeDoc(body) {
  let text = readFileSync(DOC, "utf8");
  if (!(text.includes(MARK_START) && text.includes(MARK_END))) {
    const section = `${SECTION_HEADING}\n\n${MARK_START}\n${MARK_END}\n\n`;
    const firstSection = text.search(/^## /m);
    text = firstSection < 0 ? `${text.trimEnd()}\n\n${section}` : text.slice(0, firstSection) + section + text.slice(firstSection);
  }
  const a = text.indexOf(MARK_START);
  const b = text.indexOf(MARK_END);
  writeFileSync(DOC, `${text.slice(0, a)}${MARK_START}\n${body}\n${text.slice(b)}`);
}

// ---------------------------------------------------------------- main

function benchmarkBinary() {
  if (process.env.ETCD_BENCHMARK) return process.env.ETCD_BENCHMARK;
  const built = spawnSync("bash", [join(ROOT, "../shared/bench/build-etcd-benchmark.sh")], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const path = built.stdout.trim().split("\n").pop();
  if (built.status !== 0 || !path) throw new Error("building etcd's benchmark tool failed");
  return path;
}

function machineLine() {
  const model = cpus()[0]?.model.trim() ?? "unknown CPU";
  return `${cpus().length} cores (${model}), Node ${process.version}`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const binary = benchmarkBinary();
  const cells = buildCells(opts);
  const servers = buildServers(opts);
  if (cells.length === 0) throw new Error("no cell matches");
  const date = new Date().toISOString().slice(0, 10);
  const started = Date.now();
  console.log(
    `${cells.length} cells × ${opts.rounds} rounds × ${servers.length} servers (${servers.map((s) => s.label).join(", ")}), ` +
      `one server at a time; tool ${binary}`,
  );

  const results = {};
  const jsonPath = join(ROOT, "bench/results", `go-bench-${date}.json`);
  const saveJson = (complete) => {
    if (!opts.write) return;
    mkdirSync(dirname(jsonPath), { recursive: true });
    const raw = {
      date,
      complete,
      machine: { cores: cpus().length, cpu: cpus()[0]?.model.trim(), node: process.version },
      tool: "etcd tools/benchmark 3.4.23",
      rounds: opts.rounds,
      warmup: opts.warmup,
      warmupSeconds: opts.warmupSeconds,
      totals: opts.totals,
      servers: servers.map(({ id, label }) => ({ id, label })),
      cells: cells.map(({ name, workload, members, conns, clients, args, total }) => ({
        name,
        workload,
        members,
        conns,
        clients,
        args,
        total,
      })),
      results,
    };
    writeFileSync(jsonPath, `${JSON.stringify(raw, null, 2)}\n`);
  };

  for (const cell of cells) {
    results[cell.name] = Object.fromEntries(servers.map((s) => [s.id, []]));
    for (let round = 1; round <= opts.rounds; round++) {
      for (const server of servers) {
        let run;
        try {
          run = await runCell(binary, cell, server, opts.warmup, opts.warmupSeconds);
        } catch (err) {
          run = { ok: false, failure: String(err.message ?? err) };
        }
        results[cell.name][server.id].push({ round, ...run });
        const what = run.ok
          ? `${fmtCount(run.rps)} req/s  p50 ${fmtMs(run.p50ms)} ms  p99 ${fmtMs(run.p99ms)} ms  ` +
            `cpu ${fmtCount(run.serverCpuMicrosPerRequest)} µs/req  load ${run.load1Start.toFixed(1)}→${run.load1End.toFixed(1)}` +
            (run.errors ? `  errors ${run.errors}` : "")
          : `FAILED: ${run.failure}`;
        console.log(`[${cell.name}] round ${round} ${server.label.padEnd(14)} ${what}`);
      }
    }
    saveJson(false);
  }
  const minutes = ((Date.now() - started) / 60000).toFixed(1);

  const header =
    `Measured ${date} on ${machineLine()}, etcd's Go \`benchmark\` tool 3.4.23, ${opts.rounds} rounds per cell ` +
    `(medians, min–max in brackets), the servers run one at a time alternating ${servers.map((s) => s.label).join(" / ")} ` +
    `within each round, a fresh data dir per start and, before each run, unmeasured warm-up runs of the same workload (${opts.warmup} requests each) for at least ${opts.warmupSeconds} s; ${VALUE_SIZE}-byte values, 8-byte sequential keys over 100,000 keys; ` +
    `totals ${opts.totals.join(" / ")} requests for 1×1 / 10×100 / 100×1000; m3 = three members, the tool given all three endpoints. ` +
    `Took ${minutes} min. Regenerate: \`npm run bench\`.`;
  const watchNote = cells.some((c) => c.workload === "watch-latency")
    ? "\n\nwatch-latency: 3.4's tool times each event from the moment the put's response arrives, not from the put's " +
      "start, so it is near 0 when a server delivers the event before the response; its req/s only echoes --put-rate."
    : "";
  const body = `${header}\n\n${renderTables(cells, servers, results)}${watchNote}`;
  console.log(`\n${body}\n`);
  if (opts.write) {
    saveJson(true);
    writeDoc(body);
    console.log(`wrote ${jsonPath} and the go-bench section of docs/performance.md`);
  }
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanupSync();
    process.exit(130);
  });
}
process.on("exit", cleanupSync);

main().catch((err) => {
  console.error(err.stack ?? String(err));
  cleanupSync();
  process.exit(1);
});

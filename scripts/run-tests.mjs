#!/usr/bin/env node
// Runs a package's tests from source with node's own test runner.
// Usage (from a package directory): node ../../scripts/run-tests.mjs [dir-or-file ...]
// Test files are `*.test.ts` below `src/` (and `test/`, if present). Workspace packages resolve to their
// `src/` through the `source` export condition, so tests never need a build of the packages they import.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";

function collect(path, out) {
  const st = statSync(path);
  if (st.isFile()) {
    out.push(path);
    return;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const child = join(path, name);
    if (statSync(child).isDirectory()) collect(child, out);
    else if (name.endsWith(".test.ts")) out.push(child);
  }
}

const args = process.argv.slice(2);
const roots = args.length > 0 ? args : ["src", "test"].filter((d) => existsSync(d));
const files = [];
for (const root of roots) collect(root, files);
if (files.length === 0) {
  // A package still being written has no tests yet; say so rather than fail the whole run.
  console.log(`no test files in ${roots.join(", ") || "this package"}`);
  process.exit(0);
}
// A test without a timeout of its own gets ten minutes; a file whose tests are all done exits even if
// something it started (a member, a timer) is still alive, so one forgotten cleanup cannot hold the
// whole run until CI's limit.
const nodeArgs = ["--conditions=source", "--import", "tsx", "--test", "--test-reporter=spec", "--test-force-exit", "--test-timeout=600000"];
if (process.env.TEST_CONCURRENCY) nodeArgs.push(`--test-concurrency=${process.env.TEST_CONCURRENCY}`);
const result = spawnSync(process.execPath, [...nodeArgs, ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);

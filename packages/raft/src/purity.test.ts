// The core is a pure, deterministic state machine: no clock, timers, randomness from a global, I/O or
// promises. These tests hold the code to that contract.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runSeed } from "./testing/chaos.js";

const srcDir = dirname(fileURLToPath(import.meta.url));

function coreFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name === "testing" || name === "gen") continue;
      out.push(...coreFiles(p));
    } else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) {
      out.push(p);
    }
  }
  return out;
}

test("the core never reads the clock, starts timers, uses Math.random, does I/O or awaits", () => {
  const forbidden = [
    /Math\.random/,
    /Date\.now/,
    /new Date\(/,
    /performance\.now/,
    /setTimeout/,
    /setInterval/,
    /setImmediate/,
    /\bawait\b/,
    /\basync\b/,
    /Promise/,
    /from "node:/,
    /process\./,
  ];
  const offenders: string[] = [];
  for (const f of coreFiles(srcDir)) {
    // Comments may mention these words; code may not.
    const code = readFileSync(f, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "");
    for (const re of forbidden) if (re.test(code)) offenders.push(`${relative(srcDir, f)}: ${re}`);
  }
  assert.deepEqual(offenders, []);
});

test("the same seed produces the same run: every decision is deterministic", () => {
  for (const seed of [7, 99]) assert.deepEqual(runSeed(seed), runSeed(seed));
});

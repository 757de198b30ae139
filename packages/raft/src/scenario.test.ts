// Scripted scenarios: every packages/raft/testdata/*.txt is a readable story with expectations
// (see src/testing/scenario.ts for the language). The SimCluster also checks the safety invariants.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runScenario } from "./testing/scenario.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "testdata");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".txt"))
  .sort();

test("scenario files exist", () => {
  assert.ok(files.length >= 5);
});

for (const f of files) {
  test(`scenario ${f}`, () => {
    const { expectations } = runScenario(`testdata/${f}`, readFileSync(join(dir, f), "utf8"));
    assert.ok(expectations > 0, "a scenario must expect something");
  });
}

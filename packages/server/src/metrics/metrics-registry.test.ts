import { test } from "node:test";
import assert from "node:assert/strict";
import { exponentialBuckets, formatValue, MetricsRegistry } from "./metrics-registry.js";

test("numbers are written as Go's %g writes them", () => {
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(20480), "20480");
  assert.equal(formatValue(0.005038318), "0.005038318");
  assert.equal(formatValue(2147483648), "2.147483648e+09");
  assert.equal(formatValue(1e6), "1e+06");
  assert.equal(formatValue(0.00001), "1e-05");
  assert.equal(formatValue(Infinity), "+Inf");
});

test("etcd's disk buckets: 1 ms doubling fourteen times", () => {
  const buckets = exponentialBuckets(0.001, 2, 14);
  assert.equal(buckets.length, 14);
  assert.equal(buckets[13], 8.192);
});

test("families render sorted, with HELP and TYPE, labels sorted by name", () => {
  const registry = new MetricsRegistry();
  const handled = registry.counter("b_total", "B things.");
  handled.inc({ z: "1", a: "x" });
  handled.inc({ a: "x", z: "1" }, 2);
  registry.gauge("a_gauge", "A gauge.", () => 7);
  assert.equal(
    registry.render(),
    [
      "# HELP a_gauge A gauge.",
      "# TYPE a_gauge gauge",
      "a_gauge 7",
      "# HELP b_total B things.",
      "# TYPE b_total counter",
      'b_total{a="x",z="1"} 3',
      "",
    ].join("\n"),
  );
  assert.throws(() => registry.counter("b_total", "again"), /registered twice/);
  assert.throws(() => handled.inc({}, -1), RangeError);
});

test("a histogram's buckets are cumulative and its sum and count exact", () => {
  const registry = new MetricsRegistry();
  const histogram = registry.histogram("d_seconds", "D.", [0.001, 0.002, 0.004]);
  assert.match(registry.render(), /d_seconds_bucket\{le="\+Inf"\} 0\nd_seconds_sum 0\nd_seconds_count 0/);
  for (const v of [0.0005, 0.0015, 0.003, 5]) histogram.observe(v);
  const text = registry.render();
  assert.match(text, /d_seconds_bucket\{le="0.001"\} 1\n/);
  assert.match(text, /d_seconds_bucket\{le="0.002"\} 2\n/);
  assert.match(text, /d_seconds_bucket\{le="0.004"\} 3\n/);
  assert.match(text, /d_seconds_bucket\{le="\+Inf"\} 4\n/);
  assert.match(text, /d_seconds_count 4\n/);
  assert.deepEqual(histogram.snapshot(), { count: 4, sum: 5.005 });
});

test("label values are escaped", () => {
  const registry = new MetricsRegistry();
  registry.gauge("g", "G.").set(1, { v: 'a"b\\c\nd' });
  assert.match(registry.render(), /g\{v="a\\"b\\\\c\\nd"\} 1/);
});

/**
 * A minimal Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (0.0.4) as client_golang writes it — families sorted by name, label pairs sorted
 * by label name, numbers as Go's `strconv.FormatFloat(v, 'g', -1, 64)` — so scrapers and dashboards
 * built for etcd read ours the same. No dependency: the format is small and stable.
 */

export type Labels = Readonly<Record<string, string>>;

type MetricType = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Lines after `# HELP`/`# TYPE`, produced at scrape time. */
  samples(): string[];
}

/** Go's `%g` with the shortest precision: exponent form below 1e-4 and from 1e6 up, exponent ≥ 2 digits. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const [mantissa, expText] = value.toExponential().split("e") as [string, string];
  const exponent = Number(expText);
  if (exponent >= -4 && exponent < 6) return String(value);
  return `${mantissa}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function renderLabels(labels: Labels, extra?: readonly [string, string]): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (extra !== undefined) pairs.push([extra[0], extra[1]]);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/** Identity of a label set, independent of key order. */
function labelKey(labels: Labels): string {
  // On the hot path (a counter per gRPC call): plain concatenation, no intermediate arrays of pairs.
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  let key = "";
  for (const name of names) key += `${name}\u0000${String(labels[name])}\u0001`;
  return key;
}

abstract class LabelledValues<T> {
  protected readonly series = new Map<string, { labels: Labels; value: T }>();
  protected entry(labels: Labels, init: () => T): { labels: Labels; value: T } {
    const key = labelKey(labels);
    let found = this.series.get(key);
    if (found === undefined) {
      found = { labels, value: init() };
      this.series.set(key, found);
    }
    return found;
  }
  protected sorted(): { labels: Labels; value: T }[] {
    return [...this.series.values()].sort((a, b) => {
      const ka = renderLabels(a.labels);
      const kb = renderLabels(b.labels);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }
}

export class Counter extends LabelledValues<number> implements Family {
  readonly type = "counter" as const;
  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    super();
  }
  /** Adds `amount` (≥ 0: a counter never goes down). */
  inc(labels: Labels = {}, amount = 1): void {
    if (amount < 0) throw new RangeError(`counter ${this.name} cannot decrease`);
    this.entry(labels, () => 0).value += amount;
  }
  /** Makes the series exist at 0, as client_golang's pre-initialised label sets. */
  touch(labels: Labels = {}): void {
    this.entry(labels, () => 0);
  }
  get(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.value ?? 0;
  }
  /**
   * The series of `labels`, made to exist at 0, as a handle whose `inc` adds to it without looking the
   * label set up again: for callers that count on every request with a label set known in advance.
   */
  seriesOf(labels: Labels): CounterSeries {
    const series = this.entry(labels, () => 0);
    const name = this.name;
    return {
      inc(amount = 1) {
        if (amount < 0) throw new RangeError(`counter ${name} cannot decrease`);
        series.value += amount;
      },
    };
  }
  samples(): string[] {
    return this.sorted().map((s) => `${this.name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
  }
}

/** One series of a `Counter`, resolved once. */
export interface CounterSeries {
  inc(amount?: number): void;
}

/** A gauge whose value is either set, or read at scrape time from `collect`. */
export class Gauge extends LabelledValues<number> implements Family {
  readonly type: "gauge" | "counter" = "gauge";
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect?: () => number,
  ) {
    super();
  }
  set(value: number, labels: Labels = {}): void {
    this.entry(labels, () => 0).value = value;
  }
  add(amount: number, labels: Labels = {}): void {
    this.entry(labels, () => 0).value += amount;
  }
  get(labels: Labels = {}): number {
    if (this.collect !== undefined && Object.keys(labels).length === 0) return this.collect();
    return this.series.get(labelKey(labels))?.value ?? 0;
  }
  samples(): string[] {
    if (this.collect !== undefined) return [`${this.name} ${formatValue(this.collect())}`];
    return this.sorted().map((s) => `${this.name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
  }
}

interface HistogramState {
  /** Count per bucket (not cumulative; cumulated when rendered). */
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends LabelledValues<HistogramState> implements Family {
  readonly type = "histogram" as const;
  readonly buckets: readonly number[];
  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    super();
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  observe(value: number, labels: Labels = {}): void {
    const state = this.entry(labels, () => ({ counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 })).value;
    const index = this.buckets.findIndex((upper) => value <= upper);
    if (index >= 0) state.counts[index]!++;
    state.sum += value;
    state.count++;
  }
  /** Count and sum of one series (for tests and health checks). */
  snapshot(labels: Labels = {}): { count: number; sum: number } {
    const state = this.series.get(labelKey(labels))?.value;
    return { count: state?.count ?? 0, sum: state?.sum ?? 0 };
  }
  samples(): string[] {
    const series = this.sorted();
    // An unlabelled histogram shows its (empty) buckets before the first observation, as client_golang.
    if (series.length === 0)
      series.push({ labels: {}, value: { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 } });
    const lines: string[] = [];
    for (const { labels, value } of series) {
      let cumulative = 0;
      this.buckets.forEach((upper, i) => {
        cumulative += value.counts[i]!;
        lines.push(`${this.name}_bucket${renderLabels(labels, ["le", formatValue(upper)])} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket${renderLabels(labels, ["le", "+Inf"])} ${value.count}`);
      lines.push(`${this.name}_sum${renderLabels(labels)} ${formatValue(value.sum)}`);
      lines.push(`${this.name}_count${renderLabels(labels)} ${value.count}`);
    }
    return lines;
  }
}

/** Prometheus' `ExponentialBuckets(start, factor, count)`. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  private register<F extends Family>(family: F): F {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.set(family.name, family);
    return family;
  }

  counter(name: string, help: string): Counter {
    return this.register(new Counter(name, help));
  }

  gauge(name: string, help: string, collect?: () => number): Gauge {
    return this.register(new Gauge(name, help, collect));
  }

  /** A counter kept elsewhere (process CPU time), read when scraped. */
  counterFunc(name: string, help: string, collect: () => number): Gauge {
    const family = new Gauge(name, help, collect);
    (family as { type: "gauge" | "counter" }).type = "counter";
    return this.register(family);
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, buckets));
  }

  /** The text exposition format (`text/plain; version=0.0.4`). */
  render(): string {
    const names = [...this.families.keys()].sort();
    const out: string[] = [];
    for (const name of names) {
      const family = this.families.get(name)!;
      const samples = family.samples();
      if (samples.length === 0) continue;
      out.push(`# HELP ${name} ${family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${family.type}`, ...samples);
    }
    return out.join("\n") + "\n";
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

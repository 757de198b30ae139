/**
 * Large request bodies decoded off the event loop. A hostile body at the size limit (~2.8 MB of JSON: a
 * byte array of a million numbers, a txn of 100k ops) costs the decoder about a second of CPU; decoded
 * in slices on the event loop it still stalls every other request of the member for tens of milliseconds
 * at a time (garbage collection, the one-pass steps). Values of `OFFLOAD_FROM_BYTES` or more go to a small
 * bounded pool of worker threads instead, which answer with the protobuf binary of the message (forwarded
 * as it is) or with the answer the event loop's decode would give.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { DescMessage } from "@bufbuild/protobuf";

/** Values at least this long are decoded by a thread; the hop costs more than it saves below it. */
export const OFFLOAD_FROM_BYTES = 64 * 1024;
/** One decode thread per spare core, at most two: the event loop keeps a core of its own. */
export const DEFAULT_DECODE_THREADS = Math.max(1, Math.min(2, availableParallelism() - 1));
/** Values waiting for a thread beyond this are refused (too many requests) rather than queued. */
export const DEFAULT_DECODE_QUEUE_LIMIT = 8;

export interface DecodeJob {
  readonly id: number;
  readonly typeName: string;
  readonly json: Uint8Array;
}

export type DecodeReply =
  | { readonly id: number; readonly encoded: Uint8Array }
  /** A value jsonpb refuses: Go's text. */
  | { readonly id: number; readonly error: string }
  /** A txn nested deeper than the gateway forwards. */
  | { readonly id: number; readonly tooManyOps: true }
  /** Anything else (a bug, or a message protobuf-es cannot encode): the event loop decodes it itself. */
  | { readonly id: number; readonly internal: string };

/** What a thread made of a value, or `busy` when the queue is full, `failed` when the thread was lost. */
export type DecodeOutcome = DecodeReply | { readonly busy: true } | { readonly failed: unknown };

interface Pending {
  readonly job: DecodeJob;
  readonly done: (outcome: DecodeOutcome) => void;
}

interface Thread {
  readonly worker: Worker;
  busy: Pending | undefined;
}

/**
 * The thread's program is parse-worker.ts (sources, under tsx) or the parse-worker.js tsup builds beside
 * index.js; either way it sits next to this module. It is started from a small `eval` bootstrap
 * (CommonJS) that imports it, first registering tsx's loader for the sources: a worker does not inherit
 * the loader hooks the process registered with `--import tsx`.
 */
const BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
(async () => {
  if (workerData.tsxApi) (await import(workerData.tsxApi)).register();
  await import(workerData.entry);
})().catch((error) => { setImmediate(() => { throw error; }); });
`;

function bootstrapData(): { entry: string; tsxApi: string | undefined } {
  const fromSources = import.meta.url.endsWith(".ts");
  return {
    entry: new URL(fromSources ? "./parse-worker.ts" : "./parse-worker.js", import.meta.url).href,
    tsxApi: fromSources ? import.meta.resolve("tsx/esm/api") : undefined,
  };
}

export interface DecodePoolOptions {
  readonly threads?: number;
  readonly queueLimit?: number;
}

/**
 * A bounded pool of decode threads. Threads start on first use, do not keep the process alive, and a
 * thread that dies fails only its own job (the caller decodes that one itself) and is replaced on demand.
 */
export class DecodePool {
  readonly threads: number;
  readonly queueLimit: number;
  private readonly pool: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  private workerData: ReturnType<typeof bootstrapData> | undefined;
  /** Values decoded by a thread (answered by it, whatever the answer). */
  decoded = 0;

  constructor(options: DecodePoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(options.threads ?? DEFAULT_DECODE_THREADS));
    this.queueLimit = Math.max(0, Math.floor(options.queueLimit ?? DEFAULT_DECODE_QUEUE_LIMIT));
  }

  /**
   * Decodes `json` (a value a JsonValueStream took, so its syntax is checked) as a message of `schema`.
   * The bytes are copied: the caller's buffer stays its own.
   */
  decode(schema: DescMessage, json: Uint8Array): Promise<DecodeOutcome> {
    return new Promise((done) => {
      if (this.closed) {
        done({ failed: new Error("decode pool closed") });
        return;
      }
      const pending: Pending = { job: { id: this.nextId++, typeName: schema.typeName, json: json.slice() }, done };
      let idle: Thread | undefined;
      try {
        idle = this.idleThread();
      } catch (error) {
        done({ failed: error });
        return;
      }
      if (idle !== undefined) this.run(idle, pending);
      else if (this.queue.length >= this.queueLimit) done({ busy: true });
      else this.queue.push(pending);
    });
  }

  /** Stops every thread; waiting and running jobs end as `failed`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const stopped = new Error("decode pool closed");
    for (const p of this.queue.splice(0)) p.done({ failed: stopped });
    for (const t of this.pool.splice(0)) {
      t.busy?.done({ failed: stopped });
      t.busy = undefined;
      void t.worker.terminate();
    }
  }

  private idleThread(): Thread | undefined {
    const idle = this.pool.find((t) => t.busy === undefined);
    if (idle !== undefined) return idle;
    if (this.pool.length < this.threads) return this.startThread();
    return undefined;
  }

  private startThread(): Thread {
    this.workerData ??= bootstrapData();
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: this.workerData });
    worker.unref();
    const thread: Thread = { worker, busy: undefined };
    worker.on("message", (reply: DecodeReply) => {
      const pending = thread.busy;
      if (pending === undefined || pending.job.id !== reply.id) return;
      thread.busy = undefined;
      this.decoded++;
      pending.done(reply);
      this.next(thread);
    });
    const lost = (error: unknown): void => {
      const index = this.pool.indexOf(thread);
      if (index < 0) return;
      this.pool.splice(index, 1);
      thread.busy?.done({ failed: error });
      thread.busy = undefined;
      const waiting = this.queue.shift();
      if (waiting !== undefined) this.run(this.startThread(), waiting);
    };
    worker.on("error", lost);
    worker.on("exit", (code) => lost(new Error(`decode thread exited with code ${code}`)));
    this.pool.push(thread);
    return thread;
  }

  private run(thread: Thread, pending: Pending): void {
    thread.busy = pending;
    thread.worker.postMessage(pending.job, [pending.job.json.buffer as ArrayBuffer]);
  }

  private next(thread: Thread): void {
    const waiting = this.queue.shift();
    if (waiting !== undefined) this.run(thread, waiting);
  }
}

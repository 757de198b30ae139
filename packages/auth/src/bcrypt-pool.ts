import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { AuthError } from "./errors.js";

/**
 * The worker's whole program: bcryptjs' synchronous functions, one job at a time. It runs as an `eval`
 * worker (CommonJS) so the same code serves the sources under tsx and the built package, and loads
 * bcryptjs from the path the main thread resolved, so both sides use the same copy and hashes stay in
 * the one format (`$2b$`, read by Go's bcrypt as etcd's `$2a$` is read here).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const bcrypt = require(workerData.bcryptPath);
parentPort.on("message", (job) => {
  try {
    const result = job.op === "hash" ? bcrypt.hashSync(job.password, job.cost) : bcrypt.compareSync(job.password, job.hash);
    parentPort.postMessage({ id: job.id, result });
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String((error && error.message) || error) });
  }
});
`;

/** One bcrypt thread per spare core, at most two: the event loop keeps a core of its own. */
export const DEFAULT_BCRYPT_THREADS = Math.max(1, Math.min(2, availableParallelism() - 1));
/** Jobs waiting for a thread beyond this are refused ("too many requests") rather than queued. */
export const DEFAULT_BCRYPT_QUEUE_LIMIT = 64;

export interface BcryptPoolOptions {
  readonly threads?: number;
  readonly queueLimit?: number;
}

type Job =
  | { readonly id: number; readonly op: "hash"; readonly password: string; readonly cost: number }
  | { readonly id: number; readonly op: "compare"; readonly password: string; readonly hash: string };

interface Pending {
  readonly job: Job;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Thread {
  readonly worker: Worker;
  busy: Pending | undefined;
}

/**
 * bcrypt off the event loop: a small, bounded pool of worker threads. bcrypt is deliberately slow
 * (~100 ms at cost 10), so on the main thread every password check would stall every other request of
 * the member; here the loop only posts a message. At most `threads` checks run at once and at most
 * `queueLimit` wait; beyond that `hash`/`compare` reject with `AuthError("TooManyRequests")` at once, so
 * a flood of logins costs bounded memory and CPU. Threads start on first use, do not keep the process
 * alive, and a thread that dies fails only its own job and is replaced on demand.
 */
export class BcryptPool {
  readonly threads: number;
  readonly queueLimit: number;
  private readonly pool: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private bcryptPath: string | undefined;

  constructor(options: BcryptPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(options.threads ?? DEFAULT_BCRYPT_THREADS));
    this.queueLimit = Math.max(0, Math.floor(options.queueLimit ?? DEFAULT_BCRYPT_QUEUE_LIMIT));
  }

  hash(password: string, cost: number): Promise<string> {
    return this.submit({ id: this.nextId++, op: "hash", password, cost }) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.submit({ id: this.nextId++, op: "compare", password, hash }) as Promise<boolean>;
  }

  /** Jobs waiting for a thread (not counting those running). */
  get queued(): number {
    return this.queue.length;
  }

  /** Jobs running now. */
  get running(): number {
    return this.pool.filter((t) => t.busy !== undefined).length;
  }

  /** Stops every thread; queued and running jobs reject. The pool starts threads again if used later. */
  async close(): Promise<void> {
    const stopped = new Error("bcrypt pool closed");
    for (const p of this.queue.splice(0)) p.reject(stopped);
    const threads = this.pool.splice(0);
    for (const t of threads) t.busy?.reject(stopped);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private submit(job: Job): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const pending: Pending = { job, resolve, reject };
      const idle = this.idleThread();
      if (idle !== undefined) {
        this.run(idle, pending);
        return;
      }
      if (this.queue.length >= this.queueLimit) {
        reject(new AuthError("TooManyRequests", "auth: too many password checks waiting"));
        return;
      }
      this.queue.push(pending);
    });
  }

  private idleThread(): Thread | undefined {
    const idle = this.pool.find((t) => t.busy === undefined);
    if (idle !== undefined) return idle;
    if (this.pool.length < this.threads) return this.startThread();
    return undefined;
  }

  private startThread(): Thread {
    this.bcryptPath ??= createRequire(import.meta.url).resolve("bcryptjs");
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: this.bcryptPath } });
    worker.unref();
    const thread: Thread = { worker, busy: undefined };
    worker.on("message", (message: { id: number; result?: unknown; error?: string }) => {
      const pending = thread.busy;
      if (pending === undefined || pending.job.id !== message.id) return;
      thread.busy = undefined;
      if (message.error !== undefined) pending.reject(new Error(`bcrypt: ${message.error}`));
      else pending.resolve(message.result);
      this.next(thread);
    });
    const lost = (error: unknown): void => {
      const index = this.pool.indexOf(thread);
      if (index < 0) return;
      this.pool.splice(index, 1);
      thread.busy?.reject(error instanceof Error ? error : new Error(`bcrypt thread exited: ${String(error)}`));
      thread.busy = undefined;
      const waiting = this.queue.shift();
      if (waiting !== undefined) this.run(this.startThread(), waiting);
    };
    worker.on("error", lost);
    worker.on("exit", (code) => lost(new Error(`bcrypt thread exited with code ${code}`)));
    this.pool.push(thread);
    return thread;
  }

  private run(thread: Thread, pending: Pending): void {
    thread.busy = pending;
    // A running job keeps the process alive until it answers; an idle thread does not.
    thread.worker.ref();
    thread.worker.postMessage(pending.job);
  }

  private next(thread: Thread): void {
    const waiting = this.queue.shift();
    if (waiting !== undefined) this.run(thread, waiting);
    else thread.worker.unref();
  }
}

let shared: BcryptPool | undefined;

/** The process-wide pool `hashPassword` and `comparePassword` use unless given one. */
export function sharedBcryptPool(): BcryptPool {
  return (shared ??= new BcryptPool());
}

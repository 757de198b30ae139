// Test support for the fuzz tests: one in-process member on the memory engine, on free loopback ports,
// and fast-check's run parameters (short by default; FUZZ_RUNS / FUZZ_SEED for long or replayed runs).

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { openMemoryBackend } from "@etcd-ts/storage";
import { freePort, removeDir, tempDir } from "@etcd-ts/test-support";
import type fc from "fast-check";
import { defaultConfig, type ServerConfig } from "../config.js";
import type { Logger } from "../log.js";
import { startMember, type RunningMember } from "../member.js";

/** fast-check parameters: `defaultRuns` cases bounded by `timeLimitMs`, unless FUZZ_RUNS says how many. */
export function fuzzParameters(defaultRuns: number, timeLimitMs: number): fc.Parameters<unknown> {
  const runs = process.env.FUZZ_RUNS;
  const seed = process.env.FUZZ_SEED;
  return {
    numRuns: runs !== undefined ? Number(runs) : defaultRuns,
    // The option, not its plugin: a run interrupted before any success fails with the option, passes with the plugin.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    ...(runs === undefined ? { interruptAfterTimeLimit: timeLimitMs } : {}),
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
  };
}

/** Errors the member logged as "unexpected": a handler failed with something untyped (a bug). */
export interface RecordingLogger extends Logger {
  readonly unexpected: string[];
  /** The last errors logged, to explain a failure. */
  readonly errors: string[];
}

export function recordingLogger(): RecordingLogger {
  const unexpected: string[] = [];
  const errors: string[] = [];
  return {
    unexpected,
    errors,
    debug() {},
    info() {},
    warn() {},
    error(msg, fields) {
      // The server logs errors as strings (String(error)); anything else prints as it would.
      /* eslint-disable @typescript-eslint/no-base-to-string */
      if (/unexpected/.test(msg)) unexpected.push(`${msg}: ${String(fields?.error ?? "")}`);
      errors.push(`${msg}: ${String(fields?.error ?? "")}`);
      /* eslint-enable @typescript-eslint/no-base-to-string */
      if (errors.length > 20) errors.shift();
    },
  };
}

export interface FuzzMember {
  readonly member: RunningMember;
  readonly clientAddress: string;
  readonly peerUrl: string;
  stop(): Promise<void>;
}

/** A single member (memory engine, a temp data dir) on 127.0.0.1. */
export async function startFuzzMember(logger: Logger, config: Partial<ServerConfig> = {}): Promise<FuzzMember> {
  const dataDir = tempDir("fuzz");
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const member = await startMember({
    config: {
      ...defaultConfig("fuzz"),
      dataDir,
      listenClientUrls: [clientUrl],
      advertiseClientUrls: [clientUrl],
      listenPeerUrls: [peerUrl],
      initialAdvertisePeerUrls: [peerUrl],
      initialCluster: new Map([["fuzz", [peerUrl]]]),
      bcryptCost: 4,
      logLevel: "error",
      ...config,
    },
    backend: openMemoryBackend(),
    logger,
  });
  return {
    member,
    clientAddress: `127.0.0.1:${member.clientPorts[0]}`,
    peerUrl,
    stop: async () => {
      await member.stop();
      removeDir(dataDir);
    },
  };
}

/** The heap in use after two full collections. */
export function heapAfterGc(): number {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

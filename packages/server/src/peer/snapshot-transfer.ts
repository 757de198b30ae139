import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { decodeMessage, encodeMessage, type Message } from "@etcd-ts/raft";
import { openBoltSnapshotStream } from "@etcd-ts/snapshot";
import type { Snapshot as BackendSnapshot } from "@etcd-ts/storage";
import type { Logger } from "../log.js";
import type { PeerNetwork, SnapshotBody } from "./peer-network.js";
import { peerRequest } from "../tls.js";
import { CLUSTER_ID_HEADER, FROM_HEADER } from "./transport.js";

/**
 * Shipping the whole backend to a follower whose log the leader has compacted away (etcd's
 * `rafthttp` snapshot sender, `POST /raft/snapshot`): a dedicated streamed request, not the small-message
 * stream. The body is a 4-byte big-endian length, the encoded raft `MsgSnap` (its metadata names the
 * index the backend is at), then the backend in etcd's bbolt snapshot format with its SHA-256 appended.
 *
 * The follower writes the file under its data dir, checks it, and only then steps the message into
 * raft; raft's Ready then carries the snapshot, and the server installs the file as its backend.
 */
export const RAFT_SNAPSHOT_PATH = "/raft/snapshot";

/** Where a member keeps databases received from the leader until they become its backend. */
export function receivedSnapshotDir(dataDir: string): string {
  return join(dataDir, "member", "snap-received");
}

/** The received database for raft index `index` (kept until installed, so a restart can finish the job). */
export function receivedSnapshotPath(dataDir: string, index: number): string {
  return join(receivedSnapshotDir(dataDir), `${index.toString(16).padStart(16, "0")}.snap.db`);
}

/**
 * Ships a consistent view of the backend to a follower over `network` in etcd's bbolt snapshot format
 * with its SHA-256 appended; `message.snapshot.metadata` names the index the view holds. The view is
 * closed when the transfer ends; resolves once the follower accepted it.
 */
export async function shipBackendSnapshot(
  network: Pick<PeerNetwork, "sendSnapshot">,
  urls: readonly string[],
  message: Message,
  view: BackendSnapshot,
  logger: Logger,
): Promise<void> {
  try {
    const stream = await openBoltSnapshotStream(view, { appendSha256: true });
    await network.sendSnapshot(urls, message, { size: stream.size, chunks: stream });
    logger.info("sent a database snapshot", { to: message.to.toString(16), index: message.snapshot?.metadata.index, bytes: stream.size });
  } finally {
    view.close();
  }
}

export interface SnapshotPostOptions {
  readonly urls: readonly string[];
  readonly clusterId: bigint;
  readonly localId: bigint;
  readonly message: Message;
  readonly body: SnapshotBody;
}

/** `POST /raft/snapshot` to the first URL that takes it: the length-prefixed raft message, then the database. */
export async function postSnapshot(options: SnapshotPostOptions): Promise<void> {
  const { message, body } = options;
  const head = encodeMessage(message);
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(head.byteLength, 0);
  let lastError: unknown = new Error("no peer URL");
  for (const base of options.urls) {
    try {
      await new Promise<void>((resolve, reject) => {
        const req = peerRequest(new URL(RAFT_SNAPSHOT_PATH, base), {
          method: "POST",
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(4 + head.byteLength + body.size),
            [CLUSTER_ID_HEADER]: options.clusterId.toString(16),
            [FROM_HEADER]: options.localId.toString(16),
          },
          agent: false,
        });
        req.once("error", reject);
        req.once("response", (res: IncomingMessage) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () =>
            res.statusCode === 204 || res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}: ${text.trim()}`)),
          );
        });
        void (async () => {
          try {
            req.write(prefix);
            req.write(head);
            for await (const chunk of body.chunks) {
              if (!req.write(chunk)) await new Promise<void>((r) => req.once("drain", () => r()));
            }
            req.end();
          } catch (error) {
            req.destroy(error instanceof Error ? error : new Error(String(error)));
          }
        })();
      });
      return;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

export interface SnapshotUploadHandlers {
  readonly clusterId: () => bigint;
  /** Takes the upload's raft message and the database bytes after it; resolves once it is durable and raft was told. */
  readonly receive: (message: Message, chunks: AsyncIterable<Uint8Array>) => Promise<void>;
  readonly logger: Logger;
}

/** Serves `POST /raft/snapshot` on the peer listener; returns false for other requests. */
export function handleSnapshotUpload(handlers: SnapshotUploadHandlers, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? "").split("?")[0];
  if (path !== RAFT_SNAPSHOT_PATH || req.method !== "POST") return false;
  const cluster = req.headers[CLUSTER_ID_HEADER];
  if (cluster !== handlers.clusterId().toString(16)) {
    res.writeHead(412, { "content-type": "text/plain" });
    res.end(`cluster ID mismatch: local ${handlers.clusterId().toString(16)}, remote ${String(cluster)}\n`);
    req.resume();
    return true;
  }
  void receiveUpload(handlers, req).then(
    () => {
      res.writeHead(204);
      res.end();
    },
    (error: unknown) => {
      handlers.logger.warn("failed to receive a database snapshot", { error: String(error) });
      if (!res.headersSent) {
        res.writeHead(400, { "content-type": "text/plain" });
        res.end(`${error instanceof Error ? error.message : String(error)}\n`);
      }
    },
  );
  return true;
}

/**
 * The raft message ahead of the database names the snapshot's index, term and configuration: small. A
 * larger length prefix would have the whole upload buffered in memory before it is refused.
 */
const MAX_SNAPSHOT_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Reads the length-prefixed raft message off the upload, then hands it the rest of the body as it comes. */
async function receiveUpload(handlers: SnapshotUploadHandlers, req: IncomingMessage): Promise<void> {
  const body = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let header: Buffer = Buffer.alloc(0);
  let message: Message | undefined;
  let rest: Buffer = Buffer.alloc(0);
  try {
    while (message === undefined) {
      const next = await body.next();
      if (next.done === true) throw new Error("the snapshot request carried no raft snapshot message");
      header = Buffer.concat([header, next.value]);
      if (header.length < 4) continue;
      const length = header.readUInt32BE(0);
      // A refused upload is cut off: reading on would only buffer more of what was refused.
      if (length > MAX_SNAPSHOT_MESSAGE_BYTES)
        throw new Error(`the snapshot's raft message claims ${length} bytes (at most ${MAX_SNAPSHOT_MESSAGE_BYTES})`);
      if (header.length < 4 + length) continue;
      message = decodeMessage(header.subarray(4, 4 + length));
      rest = header.subarray(4 + length);
    }
  } catch (error) {
    req.destroy();
    throw error;
  }
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (rest.length > 0) yield rest;
    for (;;) {
      const next = await body.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  try {
    await handlers.receive(message, chunks());
  } catch (error) {
    // The rest of the upload is read and dropped, so the sender gets the 400 rather than a reset.
    void (async () => {
      while ((await body.next().catch(() => ({ done: true }))).done !== true);
    })();
    throw error;
  }
}

/**
 * Writes a database received from the leader under `dir`, synced, named by the raft index it holds
 * (`receivedSnapshotPath`), and returns that path. A transfer that fails leaves nothing behind.
 */
export async function storeReceivedSnapshot(
  dir: string,
  message: Message,
  chunks: AsyncIterable<Uint8Array>,
  logger: Logger,
): Promise<string> {
  if (message.snapshot === undefined) throw new Error("the snapshot request carried no raft snapshot message");
  await mkdir(dir, { recursive: true });
  const part = join(dir, `incoming-${process.pid}-${Date.now()}.part`);
  const file = createWriteStream(part);
  try {
    await new Promise<void>((resolve, reject) => {
      file.once("error", reject);
      void (async () => {
        try {
          for await (const chunk of chunks) {
            if (chunk.length > 0 && !file.write(chunk)) await new Promise<void>((r) => file.once("drain", () => r()));
          }
          resolve();
        } catch (error) {
          reject(error);
        }
      })();
    });
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const handle = await open(part, "r+");
    await handle.sync();
    await handle.close();
    const final = join(dir, `${message.snapshot.metadata.index.toString(16).padStart(16, "0")}.snap.db`); // receivedSnapshotPath's name
    await rename(part, final);
    logger.info("received a database snapshot", { from: message.from.toString(16), index: message.snapshot.metadata.index });
    return final;
  } catch (error) {
    file.destroy();
    await rm(part, { force: true });
    throw error;
  }
}

import type { WatchRequest } from "@etcd-ts/api";
import { WatchStream, type WatchableStore } from "@etcd-ts/watch";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { EtcdServer } from "../etcd-server.js";
import { GRPC_OVERHEAD_BYTES } from "../config.js";

/** Responses queued beyond this on one stream make the server stop reading that client's requests. */
const MAX_QUEUED_CONTROL_RESPONSES = 1024;

/**
 * etcd's Watch service: one `WatchStream` per gRPC stream over the server's `WatchableStore`; responses
 * are written with backpressure (a slow client fills its own queue and falls behind, the store's victim
 * handling keeps memory bounded), and every watcher is freed when the stream ends.
 */
export function serveWatch(
  call: ServerDuplexStream<WatchRequest, unknown>,
  etcd: EtcdServer,
  watchable: WatchableStore,
  options: { progressNotifyIntervalMs?: number } = {},
): void {
  const stream = new WatchStream({
    store: watchable,
    header: (revision) => etcd.header(BigInt(revision)),
    maxResponseBytes: etcd.config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    ...(options.progressNotifyIntervalMs !== undefined ? { progressNotifyIntervalMs: options.progressNotifyIntervalMs } : {}),
  });
  let waitingForDrain = false;
  let paused = false;
  const pump = () => {
    if (waitingForDrain || stream.closed) return;
    for (let response = stream.take(); response !== undefined; response = stream.take()) {
      if (!call.write(response)) {
        waitingForDrain = true;
        call.once("drain", () => {
          waitingForDrain = false;
          pump();
        });
        return;
      }
    }
    if (paused && stream.pending < MAX_QUEUED_CONTROL_RESPONSES / 2) {
      paused = false;
      call.resume();
    }
  };
  stream.onReadable(pump);
  call.on("data", (request: WatchRequest) => {
    stream.handle(request);
    if (!paused && stream.pending > MAX_QUEUED_CONTROL_RESPONSES) {
      paused = true;
      call.pause();
    }
  });
  const done = () => stream.close();
  // A client that half-closes its side keeps its watchers: etcd keeps sending events until the stream
  // is cancelled (the JSON gateway half-closes as soon as the request body ends).
  call.on("cancelled", done);
  call.on("error", done);
  call.on("close", done);
}

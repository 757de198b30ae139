import { isRpcError, type WatchRequest, type WatchResponse } from "@etcd-ts/api";
import { CANCEL_REASONS, WatchStream, type WatchableStore } from "@etcd-ts/watch";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { AuthInfo } from "@etcd-ts/auth";
import type { EtcdServer } from "../etcd-server.js";
import { GRPC_OVERHEAD_BYTES } from "../config.js";
import type { GrpcStreamStats } from "./stream-stats.js";
import { goCodeName } from "../errors.js";

/** Responses queued beyond this on one stream make the server stop reading that client's requests. */
const MAX_QUEUED_CONTROL_RESPONSES = 1024;

/**
 * etcd's Watch service: one `WatchStream` per gRPC stream over the server's `WatchableStore`; responses
 * are written with backpressure (a slow client fills its own queue and falls behind, the store's victim
 * handling keeps memory bounded), and every watcher is freed when the stream ends.
 */
export function serveWatch(
  call: ServerDuplexStream<WatchRequest, WatchResponse>,
  etcd: EtcdServer,
  watchable: WatchableStore,
  options: { progressNotifyIntervalMs?: number; token?: string | undefined; maxWatchers?: number; stats?: GrpcStreamStats } = {},
): void {
  // The caller is resolved once per stream; each create is checked against the exact range it asks for.
  let caller: AuthInfo | undefined;
  let callerError: unknown;
  const ready = etcd.callerAuth(options.token, call).then(
    (info) => (caller = info),
    (error: unknown) => (callerError = error),
  );
  const stream = new WatchStream({
    store: watchable,
    authorize: (key, rangeEnd) => {
      try {
        // Whatever resolving the caller rejected with, rethrown as it is.
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        if (callerError !== undefined) throw callerError;
        etcd.checkAuth(() => etcd.auth.checkWatch(caller, key, rangeEnd));
        return true;
      } catch (error) {
        // etcd puts the Go text of the status error in the cancel reason, for a token it cannot resolve
        // ("code = Unauthenticated") as for a range the user may not read ("code = PermissionDenied").
        if (isRpcError(error)) return new Error(`rpc error: code = ${goCodeName(error.code)} desc = ${error.message}`);
        return error instanceof Error ? error : new Error(String(error));
      }
    },
    header: (revision) => etcd.header(BigInt(revision)),
    maxResponseBytes: etcd.config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    ...(options.maxWatchers !== undefined ? { maxWatchers: options.maxWatchers } : {}),
    ...(options.progressNotifyIntervalMs !== undefined ? { progressNotifyIntervalMs: options.progressNotifyIntervalMs } : {}),
  });
  let waitingForDrain = false;
  let paused = false;
  const pump = () => {
    if (waitingForDrain || stream.closed) return;
    for (let response = stream.take(); response !== undefined; response = stream.take()) {
      if (response.canceled && response.cancelReason === CANCEL_REASONS.tooManyWatchers && options.stats)
        options.stats.watchCreatesRefused++;
      if (!call.write(response)) {
        waitingForDrain = true;
        call.once("drain", () => {
          waitingForDrain = false;
          pump();
        });
        return;
      }
    }
    maybeResume();
  };
  // Requests read but not handled yet (waiting for the caller's credentials) count with the queued
  // responses: together they are what one client can make the member hold.
  let unhandled = 0;
  const maybeResume = () => {
    if (paused && stream.pending + unhandled < MAX_QUEUED_CONTROL_RESPONSES / 2) {
      paused = false;
      call.resume();
    }
  };
  stream.onReadable(pump);
  call.on("data", (request: WatchRequest) => {
    // Requests wait for the caller's credentials (a simple token may need its entry applied first).
    unhandled++;
    void ready.then(() => {
      unhandled--;
      stream.handle(request);
      maybeResume();
    });
    if (!paused && stream.pending + unhandled > MAX_QUEUED_CONTROL_RESPONSES) {
      paused = true;
      call.pause();
    }
  });
  const unregister = options.stats?.addWatchStream(stream);
  const done = () => {
    stream.close();
    unregister?.();
  };
  // A client that half-closes its side keeps its watchers: etcd keeps sending events until the stream
  // is cancelled (the JSON gateway half-closes as soon as the request body ends).
  call.on("cancelled", done);
  call.on("error", done);
  call.on("close", done);
}

import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { gunzipSync, inflateSync } from "node:zlib";
import type { DescService } from "@bufbuild/protobuf";
import { GrpcCode, type GrpcServiceDefinition, type GrpcServiceHandlers, type GrpcServiceRegistrar } from "@etcd-ts/api";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { OK_TRAILERS_BLOCK, RESPONSE_HEADERS_BLOCK, statusBlock } from "./frames.js";
import { Http2ServerConnection, type Http2ServerStream } from "./http2-connection.js";

/** What the server is configured with. */
export interface GrpcServerOptions {
  /** Largest request message accepted; a larger one is answered RESOURCE_EXHAUSTED, as grpc-go does. */
  readonly maxReceiveMessageLength: number;
  /** Streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
}

/** A status a handler answers with (grpc-js' ServiceError shape: `details`, or an Error's `message`). */
interface StatusLike {
  code?: number;
  details?: string;
  message?: string;
}

type AnyMethod = MethodDefinition<unknown, unknown>;
type UnaryHandler = (call: ServerCall, callback: (error: StatusLike | null, value?: unknown) => void) => void;
type StreamHandler = (call: ServerCall) => void;

interface RegisteredMethod {
  readonly definition: AnyMethod;
  readonly handler: UnaryHandler | StreamHandler;
}

const MESSAGE_PREFIX_BYTES = 5;

/**
 * A gRPC server on the project's own HTTP/2 connection (`Http2ServerConnection`), registered with
 * grpc-js service definitions and handlers, whose calls behave as grpc-js' server calls do for the
 * handlers (request, metadata, write/drain, end, an emitted 'error' as the status, 'cancelled', 'close').
 * It owns no listener: the client listener hands it each connection that starts with HTTP/2's preface.
 */
export class GrpcServer implements GrpcServiceRegistrar {
  private readonly methods = new Map<string, RegisteredMethod>();
  private readonly services = new Set<string>();
  private readonly connections = new Set<Http2ServerConnection>();

  constructor(private readonly options: GrpcServerOptions) {}

  addService<S extends DescService>(definition: GrpcServiceDefinition<S>, handlers: GrpcServiceHandlers<S>): void {
    const byName = handlers as unknown as Record<string, UnaryHandler | StreamHandler | undefined>;
    for (const [name, method] of Object.entries(definition as ServiceDefinition) as [string, AnyMethod][]) {
      const handler = byName[name];
      if (handler === undefined) continue;
      this.methods.set(method.path, { definition: method, handler });
      this.services.add(method.path.split("/")[1]!);
    }
  }

  /** Serves gRPC on `socket`, whose first bytes (`head`, from the preface on) were already read from it. */
  serveConnection(socket: Duplex, head: Buffer): void {
    const peer = peerOf(socket);
    const connection = new Http2ServerConnection(socket, { maxConcurrentStreams: this.options.maxConcurrentStreams }, (stream, fields) =>
      this.startCall(stream, fields, peer),
    );
    this.connections.add(connection);
    socket.once("close", () => this.connections.delete(connection));
    if (head.length > 0) connection.receive(head);
  }

  /** Sends GOAWAY on every connection and closes them; open calls are cancelled. */
  close(): void {
    for (const connection of this.connections) connection.close();
    this.connections.clear();
  }

  private startCall(stream: Http2ServerStream, fields: readonly string[], peer: string): void {
    let path = "";
    let contentType = "";
    let timeout: string | undefined;
    let encoding: string | undefined;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      if (name === ":path") path = fields[i + 1]!;
      else if (name === "content-type") contentType = fields[i + 1]!;
      else if (name === "grpc-timeout") timeout = fields[i + 1];
      else if (name === "grpc-encoding") encoding = fields[i + 1];
    }
    if (!contentType.startsWith("application/grpc")) {
      // Not a gRPC request: HTTP 415, as grpc-go answers it.
      stream.sendHeaders(UNSUPPORTED_MEDIA_TYPE_BLOCK, true);
      return;
    }
    const method = this.methods.get(path);
    const call = new ServerCall(stream, fields, peer, path, method?.definition, this.options.maxReceiveMessageLength, encoding);
    if (method === undefined) {
      call.finish({ code: GrpcCode.UNIMPLEMENTED, details: unknownMethodMessage(path, this.services) });
      return;
    }
    if (timeout !== undefined) call.setDeadline(timeout);
    call.start(method.handler);
  }
}

/**
 * A server call of any kind. For unary and server-streaming RPCs `request` is set before the handler
 * runs; for bidirectional ones each request is a 'data' event and the client's half-close is 'end'.
 * `write` answers a message (false: wait for 'drain'), `end` sends status OK, an emitted 'error' sends
 * its status. 'cancelled' means the client (or the deadline) ended the call first; 'close' follows
 * every end.
 */
export class ServerCall extends EventEmitter {
  request: unknown = undefined;
  cancelled = false;
  /** The status this call sent or will send (read by the metrics when a stream finishes). */
  pendingStatus: { code: number; details: string } | undefined = undefined;
  readonly metadata: RequestMetadata;
  private finished = false;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private queued: unknown[] | undefined = undefined;
  private endQueued = false;
  private paused = false;
  private deadlineTimer: NodeJS.Timeout | undefined = undefined;
  private deadline = Infinity;
  private messagesReceived = 0;

  constructor(
    private readonly stream: Http2ServerStream,
    fields: readonly string[],
    private readonly peer: string,
    private readonly path: string,
    private readonly method: AnyMethod | undefined,
    private readonly maxReceiveMessageLength: number,
    private readonly encoding: string | undefined,
  ) {
    super();
    this.metadata = new RequestMetadata(fields);
    stream.onAbort = () => this.abort();
    stream.onDrain = () => this.emit("drain");
    // grpc-js' server streams turn an emitted 'error' into the call's status; handlers rely on it.
    this.on("error", (error: StatusLike) => this.finish(error));
  }

  getPeer(): string {
    return this.peer;
  }

  getPath(): string {
    return this.path;
  }

  getDeadline(): Date | number {
    return this.deadline;
  }

  /** Response metadata beyond the status is not sent by this server; headers go with the first message. */
  sendMetadata(): void {}

  /** @internal Starts a deadline from a `grpc-timeout` header (`100m`, `5S`, …). */
  setDeadline(value: string): void {
    const match = /^(\d{1,8})([HMSmun])$/.exec(value);
    if (match === null) return;
    const unitMs = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[match[2] as "H"];
    const ms = Number(match[1]) * unitMs;
    this.deadline = Date.now() + ms;
    this.deadlineTimer = setTimeout(() => {
      if (this.finished) return;
      this.finish({ code: GrpcCode.DEADLINE_EXCEEDED, details: "context deadline exceeded" });
      this.cancelled = true;
      this.emit("cancelled", "deadline");
    }, ms);
  }

  /** @internal */
  start(handler: UnaryHandler | StreamHandler): void {
    const method = this.method!;
    const stream = this.stream;
    if (method.requestStream) {
      stream.onData = (payload) => this.receive(payload, (message) => this.deliver(message));
      stream.onEnd = () => this.deliverEnd();
      this.run(() => (handler as StreamHandler)(this));
      return;
    }
    // One request message, complete once the client half-closes.
    stream.onData = (payload) =>
      this.receive(payload, (message) => {
        this.request = message;
      });
    stream.onEnd = () => {
      if (this.finished) return;
      if (this.messagesReceived !== 1) {
        this.finish({
          code: this.messagesReceived === 0 ? GrpcCode.INTERNAL : GrpcCode.UNIMPLEMENTED,
          details:
            this.messagesReceived === 0 ? "grpc: server failed to receive the request" : "grpc: more than one request for a unary RPC",
        });
        return;
      }
      if (method.responseStream) {
        this.run(() => (handler as StreamHandler)(this));
        return;
      }
      this.run(() =>
        handler(this, (error, value) => {
          if (error !== null) {
            this.finish(error);
            return;
          }
          if (this.finished) return;
          this.write(value);
          this.end();
        }),
      );
    };
  }

  /** Runs a handler; one that throws ends the call with UNKNOWN rather than the process. */
  private run(invoke: () => void): void {
    try {
      invoke();
    } catch (error) {
      this.finish({ code: GrpcCode.UNKNOWN, details: messageOf(error) });
    }
  }

  /** Answers one message. Returns false when the caller should wait for 'drain'. */
  write(message: unknown): boolean {
    if (this.finished) return false;
    let bytes: Uint8Array;
    try {
      bytes = this.method!.responseSerialize(message);
    } catch (error) {
      this.finish({
        code: GrpcCode.INTERNAL,
        details: `grpc: error while marshaling: ${messageOf(error)}`,
      });
      return false;
    }
    const stream = this.stream;
    if (!stream.hasSentHeaders) stream.sendHeaders(RESPONSE_HEADERS_BLOCK);
    const prefix = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES);
    prefix[0] = 0;
    prefix.writeUInt32BE(bytes.length, 1);
    return stream.sendData(prefix, bytes);
  }

  /** Ends the call with status OK (or with the status an emitted error set). */
  end(): void {
    this.finish({ code: GrpcCode.OK, details: "" });
  }

  /** Stops 'data' events (and the client's flow-control window) until `resume`. */
  pause(): this {
    this.paused = true;
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.paused = false;
    this.stream.resume();
    const queued = this.queued;
    if (queued !== undefined) {
      this.queued = undefined;
      for (const message of queued) {
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a "data" listener may pause
        if (this.paused) {
          (this.queued ??= []).push(message);
          continue;
        }
        this.emit("data", message);
      }
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a "data" listener may pause
    if (!this.paused && this.endQueued) {
      this.endQueued = false;
      this.emit("end");
    }
    return this;
  }

  /** @internal Sends the status (once) and closes the call. */
  finish(status: StatusLike): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    this.stream.onDrain = noop;
    const code = typeof status.code === "number" ? status.code : GrpcCode.UNKNOWN;
    const details = status.details ?? status.message ?? "";
    this.pendingStatus = { code, details };
    const stream = this.stream;
    if (!stream.localClosed) {
      if (!stream.hasSentHeaders) {
        // Trailers-only: the status in the one header block.
        stream.sendHeaders(
          Buffer.concat([RESPONSE_HEADERS_BLOCK, code === GrpcCode.OK && details === "" ? OK_TRAILERS_BLOCK : statusBlock(code, details)]),
          true,
        );
      } else {
        stream.sendTrailers(code === GrpcCode.OK && details === "" ? OK_TRAILERS_BLOCK : statusBlock(code, details));
      }
    }
    if (this.method?.responseStream) this.emit("finish");
    this.emit("close");
  }

  private abort(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    this.cancelled = true;
    this.emit("cancelled", "cancelled");
    this.emit("close");
  }

  private deliver(message: unknown): void {
    if (this.finished) return;
    if (this.paused) {
      (this.queued ??= []).push(message);
      return;
    }
    this.emit("data", message);
  }

  private deliverEnd(): void {
    if (this.finished) return;
    if (this.paused || this.queued !== undefined) {
      this.endQueued = true;
      return;
    }
    this.emit("end");
  }

  /** Reassembles length-prefixed messages from DATA payloads and hands each decoded one to `onMessage`. */
  private receive(payload: Buffer, onMessage: (message: unknown) => void): void {
    if (this.finished) return;
    this.received.push(payload);
    this.receivedBytes += payload.length;
    while (this.receivedBytes >= MESSAGE_PREFIX_BYTES) {
      const head = this.peek(MESSAGE_PREFIX_BYTES);
      const compressed = head[0]!;
      const length = head.readUInt32BE(1);
      if (length > this.maxReceiveMessageLength) {
        this.finish({
          code: GrpcCode.RESOURCE_EXHAUSTED,
          details: `grpc: received message larger than max (${length} vs. ${this.maxReceiveMessageLength})`,
        });
        return;
      }
      if (this.receivedBytes < MESSAGE_PREFIX_BYTES + length) return;
      this.take(MESSAGE_PREFIX_BYTES);
      let bytes = this.take(length);
      this.messagesReceived++;
      if (compressed !== 0) {
        const decompressed = this.decompress(bytes);
        if (decompressed === undefined) return;
        bytes = decompressed;
      }
      let message: unknown;
      try {
        message = this.method!.requestDeserialize(bytes);
      } catch (error) {
        this.finish({
          code: GrpcCode.INTERNAL,
          details: `grpc: error unmarshalling request: ${messageOf(error)}`,
        });
        return;
      }
      onMessage(message);
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the handler may end the call
      if (this.finished) return;
    }
  }

  private decompress(bytes: Buffer): Buffer | undefined {
    try {
      if (this.encoding === "gzip") return gunzipSync(bytes, { maxOutputLength: this.maxReceiveMessageLength });
      if (this.encoding === "deflate") return inflateSync(bytes, { maxOutputLength: this.maxReceiveMessageLength });
    } catch (error) {
      this.finish({ code: GrpcCode.INTERNAL, details: `grpc: failed to decompress the received message: ${String(error)}` });
      return undefined;
    }
    this.finish({
      code: GrpcCode.UNIMPLEMENTED,
      details: `grpc: Decompressor is not installed for grpc-encoding "${this.encoding ?? ""}"`,
    });
    return undefined;
  }

  /** The first `n` received bytes, without consuming them. */
  private peek(n: number): Buffer {
    const first = this.received[0]!;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.received, this.receivedBytes);
    this.received = [joined];
    return joined;
  }

  /**
   * Consumes `n` received bytes into a buffer of their own: a message must not keep the socket's read
   * buffer (of which DATA payloads are views) alive through the key-value bytes decoded from it.
   */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafeSlow(n);
    let filled = 0;
    while (filled < n) {
      const first = this.received[0]!;
      const want = n - filled;
      if (first.length <= want) {
        first.copy(out, filled);
        filled += first.length;
        this.received.shift();
      } else {
        first.copy(out, filled, 0, want);
        this.received[0] = first.subarray(want);
        filled += want;
      }
    }
    this.receivedBytes -= n;
    return out;
  }
}

/**
 * The request's metadata (its non-pseudo header fields), read the way handlers read grpc-js' Metadata:
 * `get(key)` lists the values of a (lowercase) key.
 */
export class RequestMetadata {
  constructor(private readonly fields: readonly string[]) {}

  get(key: string): string[] {
    const values: string[] = [];
    for (let i = 0; i < this.fields.length; i += 2) if (this.fields[i] === key) values.push(this.fields[i + 1]!);
    return values;
  }

  getMap(): Record<string, string> {
    const map: Record<string, string> = {};
    for (let i = 0; i < this.fields.length; i += 2) {
      const name = this.fields[i]!;
      if (!name.startsWith(":") && !(name in map)) map[name] = this.fields[i + 1]!;
    }
    return map;
  }
}

function noop(): void {}

/** grpc-go's wording for a path no registered service serves. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function unknownMethodMessage(path: string, services: ReadonlySet<string>): string {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (match === null) return `malformed method name: "${path}"`;
  if (!services.has(match[1]!)) return `unknown service ${match[1]}`;
  return `unknown method ${match[2]} for service ${match[1]}`;
}

/** The client's address as grpc-js' `getPeer()` gives it: `host:port`, IPv6 hosts in brackets. */
function peerOf(socket: Duplex): string {
  const { remoteAddress, remotePort } = socket as Partial<Socket>;
  if (remoteAddress === undefined) return "unknown";
  return remoteAddress.includes(":") ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}

/** `:status: 415` as a literal without indexing on the static table's `:status` name (index 8). */
const UNSUPPORTED_MEDIA_TYPE_BLOCK = Buffer.from([0x08, 3, ...Buffer.from("415")]);

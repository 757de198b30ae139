/**
 * grpc-gateway 1.6.4's runtime as etcd 3.4.23 runs it: the gRPC code → HTTP status table, how request
 * headers become call metadata (AnnotateContext), how a request body is read (the first JSON value), how
 * errors are written (DefaultHTTPError) and how a server stream is forwarded (ForwardResponseStream).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { create, type DescMessage, type Message } from "@bufbuild/protobuf";
import {
  Metadata,
  status as GrpcStatus,
  type CallOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
  type StatusObject,
} from "@grpc/grpc-js";
import { GatewayError, isGatewayError, isJsonDecodeError } from "./errors.js";
import { JsonValueStream, quoteGoString } from "./go-json.js";
import { canonicalHeaderKey, headerValue, STATUS_TEXT } from "./go-http.js";
import { decodeMessageSliced, encodeMessage } from "./jsonpb.js";
import { OFFLOAD_FROM_BYTES, type DecodePool } from "./decode-pool.js";

/**
 * grpc-gateway 1.6.4's HTTPStatusFromCode (FailedPrecondition is still 412 there; later versions use 400).
 */
const HTTP_STATUS_OF_GRPC_CODE: readonly number[] = [200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401];

function httpStatusOf(code: number): number {
  return HTTP_STATUS_OF_GRPC_CODE[code] ?? 500;
}

/** HTTP headers grpc-gateway forwards as `grpcgateway-<Name>` metadata (IANA permanent headers). */
const PERMANENT_HTTP_HEADERS = new Set(
  [
    "Accept",
    "Accept-Charset",
    "Accept-Language",
    "Accept-Ranges",
    "Authorization",
    "Cache-Control",
    "Content-Type",
    "Cookie",
    "Date",
    "Expect",
    "From",
    "Host",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Schedule-Tag-Match",
    "If-Unmodified-Since",
    "Max-Forwards",
    "Origin",
    "Pragma",
    "Referer",
    "User-Agent",
    "Via",
    "Warning",
  ].map((h) => h.toLowerCase()),
);

/** A gRPC status as the gateway reports it. */
export interface CallStatus {
  readonly code: number;
  readonly message: string;
  /** Trailer metadata (for a trailers-only answer this also holds the headers). */
  readonly trailers?: Metadata;
}

/**
 * grpc-gateway's AnnotateContext: `Authorization` as `authorization` metadata (and, for etcd-ts's server,
 * as `token`, the key etcd's own clients use — etcd reads either), permanent HTTP headers as
 * `grpcgateway-*`, `Grpc-Metadata-*` headers as plain metadata, X-Forwarded-Host/For, and a
 * `Grpc-Timeout` header as the call deadline.
 */
export function annotateCall(request: IncomingMessage): { metadata: Metadata; callOptions: CallOptions } {
  const metadata = new Metadata();
  const callOptions: CallOptions = {};
  const timeout = headerValue(request, "grpc-timeout");
  if (timeout !== undefined && timeout !== "") {
    const ms = decodeGrpcTimeout(timeout);
    if (ms === undefined) throw new GatewayError("Refused", `invalid grpc-timeout: ${timeout}`, { grpcCode: GrpcStatus.INVALID_ARGUMENT });
    // grpc-go's client clamps a timeout to what the header can carry (8 digits of hours); grpc-js instead
    // fails a call whose deadline is further out in a promise nobody awaits, which ends the process.
    if (ms !== 0) callOptions.deadline = new Date(Date.now() + Math.min(ms, MAX_TIMEOUT_MS));
  }
  const add = (key: string, value: string): void => {
    try {
      if (key.endsWith("-bin")) metadata.add(key, decodeBinaryHeader(key, value));
      else metadata.add(key, value);
    } catch (error) {
      if (isGatewayError(error, "Refused")) throw error;
      // grpc-js refuses keys or values gRPC cannot carry; grpc-go would drop them on the wire.
    }
  };
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = canonicalHeaderKey(raw[i]!);
    const value = raw[i + 1]!;
    if (key === "Authorization") {
      add("authorization", value);
      add("token", value);
    }
    if (PERMANENT_HTTP_HEADERS.has(key.toLowerCase())) add(`grpcgateway-${key.toLowerCase()}`, value);
    else if (key.startsWith("Grpc-Metadata-")) add(key.slice("Grpc-Metadata-".length).toLowerCase(), value);
  }
  const forwardedHost = headerValue(request, "x-forwarded-host");
  if (forwardedHost !== undefined && forwardedHost !== "") add("x-forwarded-host", forwardedHost);
  else if (request.headers.host !== undefined && request.headers.host !== "") add("x-forwarded-host", request.headers.host);
  const remote = request.socket.remoteAddress;
  if (remote !== undefined) {
    const forwardedFor = headerValue(request, "x-forwarded-for");
    add("x-forwarded-for", forwardedFor === undefined || forwardedFor === "" ? remote : `${forwardedFor}, ${remote}`);
  }
  return { metadata, callOptions };
}

export function decodeErrorMessage(error: unknown): string {
  if (isJsonDecodeError(error)) return error.message;
  throw error;
}

/** What reading a request's first JSON value came to. */
export type FirstRequest =
  | { readonly message: Message }
  /** A body jsonpb refuses; the text is Go's. */
  | { readonly error: string }
  /** The value grew past the limit; reading stopped there. */
  | { readonly tooLarge: true }
  /** Anything else thrown while decoding (a bug): the request fails, the process does not. */
  | { readonly internal: unknown }
  /** A large value a decode thread turned into the message's protobuf binary, to forward as it is. */
  | { readonly encoded: Uint8Array }
  /** A txn nested deeper than the gateway forwards (found by a decode thread). */
  | { readonly tooManyOps: true }
  /** A large value refused because every decode thread is taken and the queue is full. */
  | { readonly busy: true };

/**
 * `marshaler.NewDecoder(req.Body).Decode(&protoReq)`: the first JSON value of the body, decoded as soon as
 * it is complete (the rest of the body is read and dropped; over a websocket the body never ends). An empty
 * body is an empty request. A value longer than `maxValueBytes` is refused as soon as that many bytes are
 * in, so an oversized body is never held whole. `then` is called exactly once.
 */
export function readFirstRequest(
  request: IncomingMessage,
  schema: DescMessage,
  bodyConsumed: boolean,
  maxValueBytes: number,
  then: (outcome: FirstRequest) => void,
  pool?: DecodePool,
): void {
  const decoder = new JsonValueStream(maxValueBytes);
  // Set once the first value is taken (or refused): later input is dropped.
  let settled = false;
  const failed = (error: unknown): FirstRequest => {
    if (isGatewayError(error, "JsonTooLarge")) return { tooLarge: true };
    if (isJsonDecodeError(error)) return { error: error.message };
    return { internal: error };
  };
  const attempt = (): void => {
    if (settled) return;
    let value: ReturnType<JsonValueStream["next"]>;
    try {
      value = decoder.next();
    } catch (error) {
      settled = true;
      then(failed(error));
      return;
    }
    if (value === undefined) return;
    settled = true;
    if (!(value instanceof Uint8Array)) {
      then({ message: create(schema) });
      return;
    }
    const json = value;
    const onLoop = (): void => {
      // A large value is decoded in slices, the event loop let go in between.
      decodeMessageSliced(schema, json).then(
        (message) => then({ message }),
        (error: unknown) => then(failed(error)),
      );
    };
    if (pool === undefined || json.length < OFFLOAD_FROM_BYTES) {
      onLoop();
      return;
    }
    // A large one by a decode thread; if the thread is lost (or cannot encode it), here after all.
    void pool.decode(schema, json).then((outcome) => {
      if ("encoded" in outcome) then({ encoded: outcome.encoded });
      else if ("error" in outcome) then({ error: outcome.error });
      else if ("tooManyOps" in outcome) then({ tooManyOps: true });
      else if ("busy" in outcome) then({ busy: true });
      else onLoop();
    });
  };
  const endOfBody = (): void => {
    decoder.finish();
    attempt();
  };
  if (bodyConsumed) {
    request.resume();
    endOfBody();
    return;
  }
  request.on("data", (chunk: Buffer) => {
    if (settled) return;
    decoder.push(chunk);
    attempt();
  });
  request.on("end", endOfBody);
  request.on("error", endOfBody);
}

/**
 * The answer to a request value over the limit. etcd's gateway would read it whole and forward it, and its
 * gRPC server would refuse it as ResourceExhausted (`grpc: received message larger than max (N vs. M)`,
 * HTTP 429); the gateway refuses it with the same code and status before reading on, naming the JSON bytes
 * it stopped at since the message size is never known.
 */
export function requestTooLargeStatus(jsonLimit: number, messageLimit: number): CallStatus {
  return {
    code: GrpcStatus.RESOURCE_EXHAUSTED,
    message: `gateway: received message larger than max (over ${jsonLimit} bytes of JSON vs. ${messageLimit})`,
  };
}

/**
 * The JSON length that can still carry a message of `messageLimit` bytes: base64 makes bytes fields 4/3
 * as long, and 64 KiB more leaves room for field names, whitespace and escapes around them.
 */
export function jsonLimitFor(messageLimit: number): number {
  return Math.ceil(messageLimit / 3) * 4 + 64 * 1024;
}

/** grpc-js client errors as grpc-go's client would word them where the two differ. */
export function statusOf(error: ServiceError | StatusObject): CallStatus {
  let message = error.details;
  if (error.code === GrpcStatus.DEADLINE_EXCEEDED && message.startsWith("Deadline exceeded")) message = "context deadline exceeded";
  if (error.code === GrpcStatus.CANCELLED && message.startsWith("Cancelled on client")) message = "context canceled";
  return { code: error.code, message, trailers: error.metadata };
}

/**
 * Response metadata → `Grpc-Metadata-*` headers, as grpc-gateway's default outgoing matcher does. Like
 * grpc-go's client, `grpc-*` transport headers are not metadata; `date` is added by Node's HTTP/2 server
 * on its own and is not metadata either.
 */
export function forwardedHeaders(metadata: Metadata | undefined, prefix = "Grpc-Metadata-"): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  if (metadata === undefined) return headers;
  for (const [key, values] of Object.entries(metadata.getMap())) {
    if (key.startsWith("grpc-") || key === "date" || key.startsWith(":")) continue;
    const value = Buffer.isBuffer(values) ? values.toString("base64") : values;
    headers[`${prefix}${canonicalHeaderKey(key)}`] = value;
  }
  return headers;
}

/**
 * grpc-gateway's DefaultHTTPError: `{"error":M,"message":M,"code":N}` with the HTTP status of the code;
 * header metadata as `Grpc-Metadata-*`, trailer metadata as HTTP trailers `Grpc-Trailer-*`.
 */
export function writeHttpError(response: ServerResponse, status: CallStatus, headers?: Metadata): void {
  if (response.headersSent || response.writableEnded) {
    response.end();
    return;
  }
  const parts = [`"error":${quoteGoString(status.message)}`, `"message":${quoteGoString(status.message)}`];
  if (status.code !== 0) parts.push(`"code":${status.code}`);
  const body = `{${parts.join(",")}}`;
  const trailers = forwardedHeaders(status.trailers, "Grpc-Trailer-");
  const trailerNames = Object.keys(trailers);
  const head: OutgoingHttpHeaders = { ...forwardedHeaders(headers), "Content-Type": "application/json" };
  if (trailerNames.length > 0) head.Trailer = trailerNames.join(", ");
  else head["Content-Length"] = Buffer.byteLength(body);
  response.writeHead(httpStatusOf(status.code), head);
  response.write(body);
  if (trailerNames.length > 0) response.addTrailers(trailers);
  response.end();
}

/** Control over a forwarded stream: end it with an error of the gateway's own. */
export interface ForwardedStream {
  /** Writes `status` as the stream's final error (as if the call had failed with it) and cancels the call. */
  fail(status: CallStatus): void;
}

/**
 * grpc-gateway's ForwardResponseStream: each message as `{"result":…}` plus a newline, flushed as it comes;
 * the status line waits for the first message. A failure, even before any message, is a final
 * `{"error":{grpc_code,http_code,message,http_status}}` chunk (with the failure's HTTP status if nothing
 * was written yet).
 *
 * Flow control: Go's gateway blocks in `Write` while the client does not read. Here a write that fills the
 * response's buffer pauses the call until the response drains, so at most one message beyond the buffer's
 * high-water mark waits in memory per stream, and grpc-js stops reading, which lets HTTP/2 flow control hold
 * the member back. Anything thrown while forwarding cancels the call and ends this response alone.
 */
export function forwardStream(
  call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  response: ServerResponse,
  schema: DescMessage,
): ForwardedStream {
  let headers: Metadata | undefined;
  let wroteHeader = false;
  let finished = false;
  let paused = false;
  const head = (status: number): void => {
    response.writeHead(status, { ...forwardedHeaders(headers), "Content-Type": "application/json" });
  };
  const abort = (): void => {
    finished = true;
    call.cancel();
    if (!response.headersSent) {
      try {
        response.writeHead(500, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": 22 });
        response.end("Internal Server Error\n");
        return;
      } catch {
        // fall through: the response cannot be written any more
      }
    }
    response.destroy();
  };
  const guarded =
    <A extends unknown[]>(handler: (...args: A) => void) =>
    (...args: A): void => {
      try {
        handler(...args);
      } catch {
        abort();
      }
    };
  const resume = (): void => {
    paused = false;
    if (!finished) call.resume();
  };
  const writeFinalError = (status: CallStatus): void => {
    // grpc-go's stream.Header() hands back a trailers-only answer's metadata as the headers.
    headers ??= status.trailers;
    const httpCode = httpStatusOf(status.code);
    if (!wroteHeader) head(httpCode);
    const parts: string[] = [];
    if (status.code !== 0) parts.push(`"grpc_code":${status.code}`);
    parts.push(`"http_code":${httpCode}`);
    if (status.message !== "") parts.push(`"message":${quoteGoString(status.message)}`);
    parts.push(`"http_status":${quoteGoString(STATUS_TEXT[httpCode] ?? "")}`);
    response.end(`{"error":{${parts.join(",")}}}`);
  };
  call.on("metadata", (received: Metadata) => {
    headers = received;
  });
  call.on(
    "data",
    guarded((reply: unknown) => {
      if (finished || response.writableEnded) return;
      if (!wroteHeader) {
        head(200);
        wroteHeader = true;
      }
      if (!response.write(`{"result":${encodeMessage(schema, reply as Message)}}\n`) && !paused && !response.destroyed) {
        paused = true;
        call.pause();
        response.once("drain", resume);
      }
    }),
  );
  call.on("error", () => {
    // Reported through "status".
  });
  call.on(
    "status",
    guarded((status: StatusObject) => {
      if (finished || response.writableEnded || response.destroyed) return;
      finished = true;
      if (status.code === GrpcStatus.OK) {
        if (!wroteHeader) head(200);
        response.end();
        return;
      }
      writeFinalError(statusOf(status));
    }),
  );
  return {
    fail: (status) => {
      if (finished || response.writableEnded || response.destroyed) return;
      finished = true;
      call.cancel();
      try {
        writeFinalError(status);
      } catch {
        response.destroy();
      }
    },
  };
}

export function isFormPost(request: IncomingMessage): boolean {
  return request.method === "POST" && headerValue(request, "content-type") === "application/x-www-form-urlencoded";
}

/** The longest timeout a `grpc-timeout` header can carry: 99999999 hours. */
const MAX_TIMEOUT_MS = 99_999_999 * 3_600_000;

/** grpc-gateway's timeoutDecode: `<integer><unit>` with units H M S m u n; milliseconds, or undefined. */
function decodeGrpcTimeout(value: string): number | undefined {
  if (value.length < 2) return undefined;
  const unitMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  const unit = unitMs[value[value.length - 1]!];
  const digits = value.slice(0, -1);
  if (unit === undefined || !/^[+-]?[0-9]+$/.test(digits)) return undefined;
  return Number(digits) * unit;
}

/** grpc-gateway's decodeBinHeader: padded or unpadded standard base64. */
function decodeBinaryHeader(key: string, value: string): Buffer {
  const padded = value.length % 4 === 0;
  const valid = padded ? /^[A-Za-z0-9+/]*={0,2}$/.test(value) : /^[A-Za-z0-9+/]*$/.test(value);
  if (!valid)
    throw new GatewayError("Refused", `invalid binary header ${canonicalHeaderKey(key)}: illegal base64 data`, {
      grpcCode: GrpcStatus.INVALID_ARGUMENT,
    });
  return Buffer.from(value, "base64");
}

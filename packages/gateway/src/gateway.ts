/**
 * etcd's gRPC-JSON gateway: a grpc-gateway that dials the member's own gRPC endpoint and forwards each
 * JSON request as the matching gRPC call, answering as etcd 3.4.23 does byte for byte — grpc-gateway 1.6.4's
 * ServeMux, error bodies and stream framing, golang/protobuf 1.3.5's jsonpb (see jsonpb.ts), Go's
 * `http.ServeMux` redirects and 404s, and etcd's access controller (`/v3beta/` rewrite, CORS, OPTIONS).
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { PassThrough, type Duplex } from "node:stream";
import { posix } from "node:path";
import type { TLSSocket } from "node:tls";
import { create, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { grpcServiceDefinition } from "@etcd-ts/api";
import {
  Client,
  Metadata,
  credentials as grpcCredentials,
  status as GrpcStatus,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientUnaryCall,
  type MethodDefinition,
  type ServiceError,
  type StatusObject,
} from "@grpc/grpc-js";
import { GoJsonError, JsonValueStream, quoteGoString } from "./go-json.js";
import { JsonPbError, decodeMessage, encodeMessage } from "./jsonpb.js";
import { matchRoute, type Route } from "./routes.js";
import { Opcode, WebSocketFrameParser, acceptKey, encodeFrame } from "./websocket.js";

export interface GatewayOptions {
  /** The member's own gRPC endpoint, `host:port` (etcd dials the address it listens on). */
  readonly target: string;
  /**
   * Allowed CORS origins (etcd's `--cors`). `*` or an empty list allows every origin and answers with
   * `Access-Control-Allow-Origin: *`, which is etcd's default.
   */
  readonly cors?: readonly string[];
  /**
   * Hosts accepted in the `Host` header of plain-HTTP requests (etcd's `--host-whitelist`, against DNS
   * rebinding). `*` or an empty list (the default) accepts every host.
   */
  readonly hostWhitelist?: readonly string[];
  /**
   * Also serve the `/v3alpha/` prefix (rewritten to `/v3/`). etcd 3.4 does not: it rewrites only
   * `/v3beta/` and answers `/v3alpha/…` with 404, so this is off by default.
   */
  readonly serveV3alpha?: boolean;
  /** Credentials for the gRPC connection; insecure by default. */
  readonly credentials?: ChannelCredentials;
  /** Extra grpc-js channel options. */
  readonly channelOptions?: ChannelOptions;
}

export interface Gateway {
  /** Serves one HTTP/1.1 request (a Node `http` request listener). */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /**
   * Serves a websocket upgrade (a Node `http` server's `upgrade` listener), as etcd's websocket proxy does:
   * each message from the client is one JSON request of the route's body, each answer line goes back as a
   * text message (`/v3/watch` over a websocket). Meant for `Upgrade: websocket` requests; any other
   * upgrade is answered 400.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Cancels the calls in flight and closes the gRPC connection. */
  close(): void;
}

/**
 * grpc-gateway 1.6.4's HTTPStatusFromCode (FailedPrecondition is still 412 there; later versions use 400).
 */
const HTTP_STATUS_OF_GRPC_CODE: readonly number[] = [
  200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401,
];

function httpStatusOf(code: number): number {
  return HTTP_STATUS_OF_GRPC_CODE[code] ?? 500;
}

/** Go's http.StatusText for the statuses the gateway can produce. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "OK",
  301: "Moved Permanently",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  421: "Misdirected Request",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

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

/** Go's textproto.CanonicalMIMEHeaderKey for ordinary header names. */
function canonicalHeaderKey(key: string): string {
  return key
    .toLowerCase()
    .split("-")
    .map((part) => (part === "" ? part : part[0]!.toUpperCase() + part.slice(1)))
    .join("-");
}

/** A gRPC status as the gateway reports it. */
interface CallStatus {
  readonly code: number;
  readonly message: string;
  /** Trailer metadata (for a trailers-only answer this also holds the headers). */
  readonly trailers?: Metadata;
}

/** An error raised before or instead of a gRPC call; `code` is the gRPC code grpc-gateway would report. */
class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function createGateway(options: GatewayOptions): Gateway {
  return new JsonGateway(options);
}

class JsonGateway implements Gateway {
  private readonly client: Client;
  private readonly definitions = new Map<DescMethod, MethodDefinition<unknown, unknown>>();
  private readonly inFlight = new Set<{ cancel(): void }>();
  private readonly corsAll: boolean;
  private readonly corsOrigins: ReadonlySet<string>;
  private readonly hostsAll: boolean;
  private readonly hosts: ReadonlySet<string>;
  private closed = false;

  constructor(private readonly options: GatewayOptions) {
    const cors = options.cors ?? ["*"];
    this.corsAll = cors.length === 0 || cors.includes("*");
    this.corsOrigins = new Set(cors);
    const hosts = options.hostWhitelist ?? [];
    this.hostsAll = hosts.length === 0 || hosts.includes("*");
    this.hosts = new Set(hosts);
    // etcd's gateway raises the receive limit to MaxInt32 (snapshots and large ranges).
    this.client = new Client(options.target, options.credentials ?? grpcCredentials.createInsecure(), {
      "grpc.max_receive_message_length": 2 ** 31 - 1,
      "grpc.max_send_message_length": 2 ** 31 - 1,
      ...options.channelOptions,
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.inFlight) call.cancel();
    this.client.close();
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    try {
      this.serve(request, response);
    } catch (error) {
      if (!response.headersSent) {
        plainError(response, 500, STATUS_TEXT[500]!);
      } else {
        response.destroy(error instanceof Error ? error : undefined);
      }
    }
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const response = new RawHttpResponse(socket) as unknown as ServerResponse;
    try {
      this.serve(request, response, (path) => this.websocket(request, socket, head, path, response));
    } catch {
      socket.destroy();
    }
  }

  /**
   * tmc/grpc-websocket-proxy as etcd mounts it on `/v3/`: gorilla's handshake checks, then an internal
   * POST of the same path whose body is the client's messages (each followed by a newline) and whose answer
   * lines are sent back as text messages. Authorization comes from `Sec-WebSocket-Protocol: Bearer, <t>` or
   * a `token` cookie; Origin and Referer are forwarded.
   */
  private websocket(request: IncomingMessage, socket: Duplex, head: Buffer, path: string, response: ServerResponse): void {
    const tokenIn = (name: string, value: string): boolean =>
      (headerValue(request, name) ?? "")
        .split(",")
        .some((token) => token.trim().toLowerCase() === value);
    if (!tokenIn("connection", "upgrade") || !tokenIn("upgrade", "websocket")) {
      plainError(response, 400, STATUS_TEXT[400]!);
      return;
    }
    const handshakeError = (status: number): void => {
      response.setHeader("Sec-Websocket-Version", "13");
      plainError(response, status, STATUS_TEXT[status]!);
    };
    if (request.method !== "GET") return handshakeError(405);
    if (!tokenIn("sec-websocket-version", "13")) return handshakeError(400);
    const key = headerValue(request, "sec-websocket-key") ?? "";
    if (key.trim() === "") return handshakeError(400);
    const protocol = headerValue(request, "sec-websocket-protocol") ?? "";
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${acceptKey(key.trim())}`,
    ];
    if (protocol.startsWith("Bearer")) lines.push("Sec-WebSocket-Protocol: Bearer");
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);

    const headers: Record<string, string> = {};
    if (protocol !== "") {
      const parts = protocol.split("Bearer,");
      headers.authorization = parts.length < 2 ? "" : `Bearer ${parts[1]!.trim()}`;
    }
    for (const name of ["origin", "referer"]) {
      const value = headerValue(request, name);
      if (value !== undefined) headers[name] = value;
    }
    const cookie = /(?:^|;\s*)token=([^;]*)/.exec(headerValue(request, "cookie") ?? "");
    if (cookie !== null) headers.authorization = `Bearer ${cookie[1]}`;
    const queryAt = (request.url ?? "").indexOf("?");
    const body = new PassThrough();
    const inner = Object.assign(body, {
      method: "POST",
      url: path + (queryAt < 0 ? "" : (request.url ?? "").slice(queryAt)),
      headers,
      rawHeaders: Object.entries(headers).flat(),
      socket: { remoteAddress: undefined, encrypted: false },
    }) as unknown as IncomingMessage;
    const answer = new WebSocketLineResponse(socket);
    const parser = new WebSocketFrameParser();
    let open = true;
    const shutDown = (): void => {
      if (!open) return;
      open = false;
      body.end();
      answer.abort();
    };
    const onData = (chunk: Buffer): void => {
      if (!open) return;
      let messages;
      try {
        messages = parser.push(chunk);
      } catch {
        shutDown();
        return;
      }
      for (const message of messages) {
        if (message.opcode === Opcode.text || message.opcode === Opcode.binary) {
          body.write(message.payload);
          body.write("\n");
        } else if (message.opcode === Opcode.ping) {
          socket.write(encodeFrame(Opcode.pong, message.payload));
        } else if (message.opcode === Opcode.close) {
          // gorilla's default close handler echoes the close code, then the read loop ends everything.
          socket.write(encodeFrame(Opcode.close, message.payload.subarray(0, 2)));
          shutDown();
          return;
        }
      }
    };
    socket.on("data", onData);
    socket.on("close", shutDown);
    socket.on("end", shutDown);
    if (head.length > 0) onData(head);
    this.route(inner, answer as unknown as ServerResponse, path);
  }

  /** etcd's accessController, then Go's http.ServeMux with the gateway mounted on `/v3/`. */
  private serve(request: IncomingMessage, response: ServerResponse, upgradeTo?: (path: string) => void): void {
    const rawUrl = request.url ?? "/";
    const queryAt = rawUrl.indexOf("?");
    const rawPath = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt < 0 ? "" : rawUrl.slice(queryAt);
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      response.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" });
      response.end("400 Bad Request");
      return;
    }
    // Backward compatibility: etcd 3.4 rewrites /v3beta/ to /v3/ before routing.
    if (path.startsWith("/v3beta/")) path = `/v3/${path.slice("/v3beta/".length)}`;
    else if (this.options.serveV3alpha === true && path.startsWith("/v3alpha/")) path = `/v3/${path.slice("/v3alpha/".length)}`;

    const encrypted = (request.socket as TLSSocket).encrypted === true;
    if (!encrypted && !this.hostAllowed(request.headers.host ?? "")) {
      const host = hostnameOf(request.headers.host ?? "");
      plainError(response, 421, hostRejectedMessage(host));
      return;
    }
    this.addCorsHeaders(request, response);
    if (request.method === "OPTIONS") {
      response.writeHead(200, { "content-length": "0" });
      response.end();
      return;
    }

    // http.ServeMux: a path that is not clean is redirected to its clean form; "/v3" to the subtree "/v3/".
    const clean = cleanPath(path);
    if (clean !== path) {
      redirect(request, response, clean + query);
      return;
    }
    if (path === "/v3") {
      redirect(request, response, `/v3/${query}`);
      return;
    }
    if (!path.startsWith("/v3/")) {
      plainError(response, 404, "404 page not found");
      return;
    }
    if (upgradeTo !== undefined) upgradeTo(path);
    else this.route(request, response, path);
  }

  private hostAllowed(hostHeader: string): boolean {
    if (this.hostsAll) return true;
    return this.hosts.has(hostnameOf(hostHeader));
  }

  /** etcd's addCORSHeader, for every answer when the origin is allowed. */
  private addCorsHeaders(request: IncomingMessage, response: ServerResponse): void {
    let allowOrigin: string | undefined;
    if (this.corsAll) allowOrigin = "*";
    else {
      const origin = request.headers.origin ?? "";
      if (this.corsOrigins.has(origin)) allowOrigin = origin;
    }
    if (allowOrigin === undefined) return;
    response.setHeader("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
    response.setHeader("Access-Control-Allow-Origin", allowOrigin);
    response.setHeader("Access-Control-Allow-Headers", "accept, content-type, authorization");
  }

  /** grpc-gateway's ServeMux.ServeHTTP: every binding is POST; another method on a bound path is 405. */
  private route(request: IncomingMessage, response: ServerResponse, path: string): void {
    const route = matchRoute(path);
    if (route === undefined || route === "bad-verb") {
      plainError(response, 404, STATUS_TEXT[404]!);
      return;
    }
    let method = request.method ?? "GET";
    let bodyConsumed = false;
    const override = headerValue(request, "x-http-method-override");
    if (override !== undefined && override !== "" && isFormPost(request)) {
      // grpc-gateway honours the override only for form POSTs, and ParseForm reads the body first.
      method = override.toUpperCase();
      bodyConsumed = true;
    }
    if (method !== "POST") {
      plainError(response, 405, STATUS_TEXT[405]!);
      return;
    }
    let metadata: Metadata;
    let callOptions: CallOptions;
    try {
      ({ metadata, callOptions } = this.annotate(request));
    } catch (error) {
      if (error instanceof GatewayError) writeHttpError(response, { code: error.code, message: error.message });
      else throw error;
      return;
    }
    const definition = this.definitionOf(route);
    switch (route.method.methodKind) {
      case "unary":
        this.unary(request, response, route, definition, metadata, callOptions, bodyConsumed);
        return;
      case "server_streaming":
        this.serverStream(request, response, route, definition, metadata, callOptions, bodyConsumed);
        return;
      default:
        this.bidiStream(request, response, route, definition, metadata, callOptions, bodyConsumed);
    }
  }

  private definitionOf(route: Route): MethodDefinition<unknown, unknown> {
    let definition = this.definitions.get(route.method);
    if (definition === undefined) {
      const service = grpcServiceDefinition(route.service);
      definition = service[route.method.name] as MethodDefinition<unknown, unknown>;
      this.definitions.set(route.method, definition);
    }
    return definition;
  }

  /**
   * grpc-gateway's AnnotateContext: `Authorization` as `authorization` metadata (and, for etcd-ts's server,
   * as `token`, the key etcd's own clients use — etcd reads either), permanent HTTP headers as
   * `grpcgateway-*`, `Grpc-Metadata-*` headers as plain metadata, X-Forwarded-Host/For, and a
   * `Grpc-Timeout` header as the call deadline.
   */
  private annotate(request: IncomingMessage): { metadata: Metadata; callOptions: CallOptions } {
    const metadata = new Metadata();
    const callOptions: CallOptions = {};
    const timeout = headerValue(request, "grpc-timeout");
    if (timeout !== undefined && timeout !== "") {
      const ms = decodeGrpcTimeout(timeout);
      if (ms === undefined) throw new GatewayError(GrpcStatus.INVALID_ARGUMENT, `invalid grpc-timeout: ${timeout}`);
      if (ms !== 0) callOptions.deadline = new Date(Date.now() + ms);
    }
    const add = (key: string, value: string): void => {
      try {
        if (key.endsWith("-bin")) metadata.add(key, decodeBinaryHeader(key, value));
        else metadata.add(key, value);
      } catch (error) {
        if (error instanceof GatewayError) throw error;
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

  private track<T extends { cancel(): void }>(call: T, response: ServerResponse): T {
    this.inFlight.add(call);
    // The HTTP client going away cancels the gRPC call, as the request context does in Go.
    response.once("close", () => {
      this.inFlight.delete(call);
      call.cancel();
    });
    return call;
  }

  private unary(
    request: IncomingMessage,
    response: ServerResponse,
    route: Route,
    definition: MethodDefinition<unknown, unknown>,
    metadata: Metadata,
    callOptions: CallOptions,
    bodyConsumed: boolean,
  ): void {
    readFirstRequest(request, route.method.input, bodyConsumed, (outcome) => {
      if ("error" in outcome) {
        // request_X_0: a body jsonpb refuses is InvalidArgument.
        writeHttpError(response, { code: GrpcStatus.INVALID_ARGUMENT, message: outcome.error });
        return;
      }
      const { message } = outcome;
      if (this.closed) {
        writeHttpError(response, { code: GrpcStatus.UNAVAILABLE, message: "grpc: the client connection is closing" });
        return;
      }
      let headers: Metadata | undefined;
      const call: ClientUnaryCall = this.client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        message,
        metadata,
        callOptions,
        (error: ServiceError | null, reply?: unknown) => {
          if (error !== null) {
            writeHttpError(response, statusOf(error), headers);
            return;
          }
          const body = encodeMessage(route.method.output, reply as Message);
          response.writeHead(200, {
            ...forwardedHeaders(headers),
            "Content-Type": "application/json",
            "Content-Length": Buffer.byteLength(body),
          });
          response.end(body);
        },
      );
      call.on("metadata", (received: Metadata) => {
        headers = received;
      });
      this.track(call, response);
    });
  }

  private serverStream(
    request: IncomingMessage,
    response: ServerResponse,
    route: Route,
    definition: MethodDefinition<unknown, unknown>,
    metadata: Metadata,
    callOptions: CallOptions,
    bodyConsumed: boolean,
  ): void {
    readFirstRequest(request, route.method.input, bodyConsumed, (outcome) => {
      if ("error" in outcome) {
        writeHttpError(response, { code: GrpcStatus.INVALID_ARGUMENT, message: outcome.error });
        return;
      }
      const { message } = outcome;
      const call: ClientReadableStream<unknown> = this.client.makeServerStreamRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        message,
        metadata,
        callOptions,
      );
      this.track(call, response);
      forwardStream(call, response, route.method.output);
    });
  }

  private bidiStream(
    request: IncomingMessage,
    response: ServerResponse,
    route: Route,
    definition: MethodDefinition<unknown, unknown>,
    metadata: Metadata,
    callOptions: CallOptions,
    bodyConsumed: boolean,
  ): void {
    const call: ClientDuplexStream<unknown, unknown> = this.client.makeBidiStreamRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      metadata,
      callOptions,
    );
    this.track(call, response);
    // Nothing is answered before the first request is through: etcd's Watch and LeaseKeepAlive send nothing
    // unasked, so forwarding can start at once.
    forwardStream(call, response, route.method.output);
    const decoder = new JsonValueStream();
    let first = true;
    let sending = true;
    // request_Watch_Watch_0: the first request is decoded before anything is forwarded; if it is bad the
    // answer is an HTTP error (Unknown, 500). Later bad requests just end the sending side, silently.
    const pump = (): void => {
      while (sending) {
        let message: Message;
        try {
          const value = decoder.next();
          if (value === undefined) return;
          if (!(value instanceof Uint8Array)) {
            sending = false;
            call.end();
            return;
          }
          message = decodeMessage(route.method.input, value);
        } catch (error) {
          sending = false;
          call.end();
          if (first) {
            writeHttpError(response, { code: GrpcStatus.UNKNOWN, message: decodeErrorMessage(error) });
            call.cancel();
          }
          return;
        }
        first = false;
        call.write(message);
      }
    };
    if (bodyConsumed) {
      decoder.finish();
      pump();
      return;
    }
    request.on("data", (chunk: Buffer) => {
      decoder.push(chunk);
      pump();
    });
    const endOfBody = (): void => {
      decoder.finish();
      pump();
    };
    request.on("end", endOfBody);
    request.on("error", endOfBody);
  }
}

function decodeErrorMessage(error: unknown): string {
  if (error instanceof JsonPbError || error instanceof GoJsonError) return error.message;
  throw error;
}

/**
 * `marshaler.NewDecoder(req.Body).Decode(&protoReq)`: the first JSON value of the body, decoded as soon as
 * it is complete (the rest of the body is ignored; over a websocket the body never ends). An empty body is
 * an empty request.
 */
function readFirstRequest(
  request: IncomingMessage,
  schema: DescMessage,
  bodyConsumed: boolean,
  then: (outcome: { message: Message } | { error: string }) => void,
): void {
  const decoder = new JsonValueStream();
  let settled = false;
  const attempt = (): void => {
    if (settled) return;
    let outcome: { message: Message } | { error: string };
    try {
      const value = decoder.next();
      if (value === undefined) return;
      outcome = { message: value instanceof Uint8Array ? decodeMessage(schema, value) : (create(schema) as unknown as Message) };
    } catch (error) {
      outcome = { error: decodeErrorMessage(error) };
    }
    settled = true;
    then(outcome);
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

/** grpc-js client errors as grpc-go's client would word them where the two differ. */
function statusOf(error: ServiceError | StatusObject): CallStatus {
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
function forwardedHeaders(metadata: Metadata | undefined, prefix = "Grpc-Metadata-"): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  if (metadata === undefined) return headers;
  for (const [key, values] of Object.entries(metadata.getMap())) {
    if (key.startsWith("grpc-") || key === "date" || key.startsWith(":")) continue;
    const value = Buffer.isBuffer(values) ? values.toString("base64") : String(values);
    headers[`${prefix}${canonicalHeaderKey(key)}`] = value;
  }
  return headers;
}

/**
 * grpc-gateway's DefaultHTTPError: `{"error":M,"message":M,"code":N}` with the HTTP status of the code;
 * header metadata as `Grpc-Metadata-*`, trailer metadata as HTTP trailers `Grpc-Trailer-*`.
 */
function writeHttpError(response: ServerResponse, status: CallStatus, headers?: Metadata): void {
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
  if (trailerNames.length > 0) response.addTrailers(trailers as Record<string, string>);
  response.end();
}

/**
 * grpc-gateway's ForwardResponseStream: each message as `{"result":…}` plus a newline, flushed as it comes;
 * the status line waits for the first message. A failure, even before any message, is a final
 * `{"error":{grpc_code,http_code,message,http_status}}` chunk (with the failure's HTTP status if nothing
 * was written yet).
 */
function forwardStream(
  call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  response: ServerResponse,
  schema: DescMessage,
): void {
  let headers: Metadata | undefined;
  let wroteHeader = false;
  call.on("metadata", (received: Metadata) => {
    headers = received;
  });
  const head = (status: number): void => {
    response.writeHead(status, { ...forwardedHeaders(headers), "Content-Type": "application/json" });
  };
  call.on("data", (reply: unknown) => {
    if (response.writableEnded) return;
    if (!wroteHeader) {
      head(200);
      wroteHeader = true;
    }
    response.write(`{"result":${encodeMessage(schema, reply as Message)}}\n`);
  });
  call.on("error", () => {
    // Reported through "status".
  });
  call.on("status", (status: StatusObject) => {
    if (response.writableEnded || response.destroyed) return;
    if (status.code === GrpcStatus.OK) {
      if (!wroteHeader) head(200);
      response.end();
      return;
    }
    const callStatus = statusOf(status);
    // grpc-go's stream.Header() hands back a trailers-only answer's metadata as the headers.
    headers ??= status.metadata;
    const httpCode = httpStatusOf(callStatus.code);
    if (!wroteHeader) head(httpCode);
    const parts: string[] = [];
    if (callStatus.code !== 0) parts.push(`"grpc_code":${callStatus.code}`);
    parts.push(`"http_code":${httpCode}`);
    if (callStatus.message !== "") parts.push(`"message":${quoteGoString(callStatus.message)}`);
    parts.push(`"http_status":${quoteGoString(STATUS_TEXT[httpCode] ?? "")}`);
    response.end(`{"error":{${parts.join(",")}}}`);
  });
}

/** Go's http.Error: a text/plain body with a trailing newline. */
function plainError(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    "Content-Length": Buffer.byteLength(message) + 1,
  });
  response.end(`${message}\n`);
}

/** Go's http.Redirect with 301, as http.ServeMux uses it. */
function redirect(request: IncomingMessage, response: ServerResponse, location: string): void {
  const headers: OutgoingHttpHeaders = { Location: location };
  if (request.method === "GET" || request.method === "HEAD") headers["Content-Type"] = "text/html; charset=utf-8";
  if (request.method === "GET") {
    const body = `<a href="${htmlEscape(location)}">${STATUS_TEXT[301]}</a>.\n\n`;
    headers["Content-Length"] = Buffer.byteLength(body);
    response.writeHead(301, headers);
    response.end(body);
    return;
  }
  headers["Content-Length"] = 0;
  response.writeHead(301, headers);
  response.end();
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;" })[c]!);
}

/** Go's http.ServeMux cleanPath: path.Clean, keeping a trailing slash. */
function cleanPath(p: string): string {
  if (p === "") return "/";
  if (!p.startsWith("/")) p = `/${p}`;
  let np = posix.normalize(p);
  if (np.length > 1 && np.endsWith("/") && !p.endsWith("/")) np = np.slice(0, -1);
  if (np.startsWith("//")) np = np.replace(/^\/+/, "/");
  return np;
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function isFormPost(request: IncomingMessage): boolean {
  return request.method === "POST" && headerValue(request, "content-type") === "application/x-www-form-urlencoded";
}

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
  if (!valid) throw new GatewayError(GrpcStatus.INVALID_ARGUMENT, `invalid binary header ${canonicalHeaderKey(key)}: illegal base64 data`);
  return Buffer.from(value, "base64");
}

function hostnameOf(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon < 0 ? host : host.slice(0, colon);
}

/** etcd's errCVE20185702 text. */
function hostRejectedMessage(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/**
 * The subset of ServerResponse the gateway uses, written as a plain HTTP/1.1 answer on a raw socket (for
 * upgrade requests that are answered without upgrading); the connection closes after it.
 */
class RawHttpResponse extends EventEmitter {
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  private readonly headers = new Map<string, string>();

  constructor(private readonly socket: Duplex) {
    super();
    socket.once("close", () => this.emit("close"));
  }

  setHeader(name: string, value: string | number): this {
    this.headers.set(name, String(value));
    return this;
  }

  writeHead(status: number, headers: OutgoingHttpHeaders = {}): this {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) this.headers.set(name, String(value));
    const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}`, `Date: ${new Date().toUTCString()}`, "Connection: close"];
    for (const [name, value] of this.headers) lines.push(`${name}: ${value}`);
    this.socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    this.headersSent = true;
    return this;
  }

  write(chunk: string | Buffer): boolean {
    if (!this.headersSent) this.writeHead(200);
    return this.socket.write(chunk);
  }

  addTrailers(): void {
    // A raw answer is never chunked; trailers are dropped.
  }

  end(chunk?: string | Buffer): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined) this.write(chunk);
    else if (!this.headersSent) this.writeHead(200);
    this.writableEnded = true;
    this.socket.end();
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    this.socket.destroy();
    return this;
  }
}

/**
 * The websocket proxy's in-memory response writer: status and headers are dropped, the body is cut into
 * lines and each non-empty line is sent as a text message (a last line without a newline too, when the
 * answer ends). The connection closes when the answer ends, as the proxy's does.
 */
class WebSocketLineResponse extends EventEmitter {
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  private pending = "";

  constructor(private readonly socket: Duplex) {
    super();
  }

  setHeader(): this {
    return this;
  }

  writeHead(): this {
    this.headersSent = true;
    return this;
  }

  addTrailers(): void {
    // No trailers over a websocket.
  }

  write(chunk: string | Buffer): boolean {
    if (this.writableEnded) return false;
    this.headersSent = true;
    this.pending += chunk.toString();
    let newline: number;
    while ((newline = this.pending.indexOf("\n")) >= 0) {
      this.send(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
    }
    return true;
  }

  end(chunk?: string | Buffer): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined) this.write(chunk);
    this.send(this.pending);
    this.pending = "";
    this.writableEnded = true;
    this.socket.end();
    this.emit("close");
    return this;
  }

  /** The client went away: the call is cancelled through "close". */
  abort(): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    this.destroyed = true;
    this.socket.end();
    this.emit("close");
  }

  destroy(): this {
    this.abort();
    return this;
  }

  private send(line: string): void {
    if (line.length === 0 || this.socket.destroyed) return;
    this.socket.write(encodeFrame(Opcode.text, Buffer.from(line)));
  }
}

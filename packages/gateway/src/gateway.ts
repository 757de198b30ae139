/**
 * etcd's gRPC-JSON gateway: a grpc-gateway that dials the member's own gRPC endpoint and forwards each
 * JSON request as the matching gRPC call, answering as etcd 3.4.23 does byte for byte — grpc-gateway 1.6.4's
 * ServeMux, error bodies and stream framing, golang/protobuf 1.3.5's jsonpb (see jsonpb.ts), Go's
 * `http.ServeMux` redirects and 404s, and etcd's access controller (`/v3beta/` rewrite, CORS, OPTIONS).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { DescMethod, Message } from "@bufbuild/protobuf";
import { TxnRequestSchema, grpcServiceDefinition, rpcErrors, type TxnRequest } from "@etcd-ts/api";
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
} from "@grpc/grpc-js";
import { AccessController, hostRejectedMessage } from "./access-control.js";
import {
  annotateCall,
  decodeErrorMessage,
  forwardStream,
  forwardedHeaders,
  isFormPost,
  jsonLimitFor,
  readFirstRequest,
  requestTooLargeStatus,
  statusOf,
  writeHttpError,
  type FirstRequest,
} from "./gateway-runtime.js";
import { isGatewayError } from "./errors.js";
import { JsonValueStream } from "./go-json.js";
import { RawHttpResponse, STATUS_TEXT, cleanPath, headerValue, hostnameOf, plainError, redirect } from "./go-http.js";
import { DecodePool } from "./decode-pool.js";
import { decodeMessageSliced, encodeMessage } from "./jsonpb.js";
import { matchRoute, type Route } from "./routes.js";
import { nestsTooDeep, responseDeserializer } from "./txn-nesting.js";
import { proxyWebsocket } from "./websocket-proxy.js";

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
  /**
   * Credentials for the gRPC connection; insecure by default. With TLS on the client port etcd dials
   * itself with its own TLS configuration and without verifying the server name
   * (`credentials.createSsl(ca, key, cert, { checkServerIdentity: () => undefined })`).
   */
  readonly credentials?: ChannelCredentials;
  /**
   * etcd's `--client-cert-auth`. With it, while `isAuthEnabled()` says auth is on, a TLS request under
   * `/v3/` whose verified client certificate has a CommonName is refused (400): etcd's gRPC server would
   * take the CN as the user, but the gateway's own connection does not carry the caller's certificate.
   */
  readonly clientCertAuth?: boolean;
  /** Whether the member's auth is enabled now (only consulted with `clientCertAuth`). */
  readonly isAuthEnabled?: () => boolean;
  /** Extra grpc-js channel options. */
  readonly channelOptions?: ChannelOptions;
  /**
   * The largest request message the member takes: etcd's `--max-request-bytes` plus the gRPC overhead it
   * allows (the member's gRPC receive limit); 2 MiB, etcd's default, when not given. One JSON request value
   * longer than it could be as JSON (`jsonLimitFor`) is refused while it is read, with 429 and
   * ResourceExhausted as the member would refuse the message, and the connection is closed.
   */
  readonly maxRequestBytes?: number;
  /**
   * What serves the paths outside `/v3/` (etcd mounts its own handler — `/health`, `/version`,
   * `/metrics` — at `/` next to the gateway). Given it, the gateway can front the whole client port: etcd's
   * access control (host whitelist, CORS, `OPTIONS`) and Go's path cleaning then apply to those paths too,
   * as in etcd. Without it they are 404 `404 page not found`.
   */
  readonly fallback?: (request: IncomingMessage, response: ServerResponse) => void;
  /**
   * Threads that decode large request values (64 KiB of JSON or more) off the event loop; one per spare
   * core, at most two, by default. 0 decodes every value on the event loop (in slices).
   */
  readonly decodeThreads?: number;
}

/** The gateway; its methods are bound, so they can be handed over as listeners as they are. */
export interface Gateway {
  /** Serves one HTTP/1.1 request (a Node `http` request listener). */
  handle: (request: IncomingMessage, response: ServerResponse) => void;
  /**
   * Serves a websocket upgrade (a Node `http` server's `upgrade` listener), as etcd's websocket proxy does:
   * each message from the client is one JSON request of the route's body, each answer line goes back as a
   * text message (`/v3/watch` over a websocket). Meant for `Upgrade: websocket` requests; any other
   * upgrade is answered 400.
   */
  handleUpgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Cancels the calls in flight and closes the gRPC connection. */
  close(): void;
  /** What the gateway holds now; every streaming answer's buffer is bounded, this shows it. */
  stats(): GatewayStats;
}

export interface GatewayStats {
  /** gRPC calls in flight (each ends when its HTTP client goes away). */
  readonly calls: number;
  /** Streaming answers open (watch, lease keep-alive, snapshot, observe; plain or over a websocket). */
  readonly streams: number;
  /**
   * Bytes written to open streaming answers that their clients have not taken yet. A stream stops reading
   * its gRPC call while its buffer is over the high-water mark, so each holds at most about one message
   * more than that.
   */
  readonly bufferedBytes: number;
  /** Large request values decoded by a decode thread so far. */
  readonly decodedOffLoop: number;
}

/** etcd's default `--max-request-bytes` (1.5 MiB) plus its gRPC overhead (512 KiB). */
const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024 + 512 * 1024;

export function createGateway(options: GatewayOptions): Gateway {
  return new JsonGateway(options);
}

class JsonGateway implements Gateway {
  private readonly client: Client;
  private readonly definitions = new Map<DescMethod, MethodDefinition<unknown, unknown>>();
  private readonly inFlight = new Set<{ cancel(): void }>();
  /** The responses of open streams, for `stats()` (a websocket's answer reports its socket's buffer). */
  private readonly streaming = new Set<{ readonly writableLength: number }>();
  private readonly access: AccessController;
  private readonly messageLimit: number;
  private readonly jsonLimit: number;
  private readonly decodePool: DecodePool | undefined;
  private closed = false;

  constructor(private readonly options: GatewayOptions) {
    this.access = new AccessController(options.cors ?? ["*"], options.hostWhitelist ?? []);
    this.messageLimit = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.jsonLimit = jsonLimitFor(this.messageLimit);
    this.decodePool = options.decodeThreads === 0 ? undefined : new DecodePool({ threads: options.decodeThreads });
    // etcd's gateway raises the receive limit to MaxInt32 (snapshots and large ranges).
    this.client = new Client(options.target, options.credentials ?? grpcCredentials.createInsecure(), {
      "grpc.max_receive_message_length": 2 ** 31 - 1,
      "grpc.max_send_message_length": 2 ** 31 - 1,
      ...options.channelOptions,
    });
  }

  // handle, handleUpgrade and close are bound: they are passed around as plain listeners.
  readonly close = (): void => {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.inFlight) call.cancel();
    this.decodePool?.close();
    this.client.close();
  };

  readonly stats = (): GatewayStats => {
    let bufferedBytes = 0;
    for (const response of this.streaming) bufferedBytes += response.writableLength;
    return { calls: this.inFlight.size, streams: this.streaming.size, bufferedBytes, decodedOffLoop: this.decodePool?.decoded ?? 0 };
  };

  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    try {
      this.serve(request, response);
    } catch {
      failRequest(response);
    }
  };

  readonly handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", () => socket.destroy());
    const response = new RawHttpResponse(socket) as unknown as ServerResponse;
    try {
      this.serve(request, response, (path) =>
        proxyWebsocket(request, socket, head, path, response, (inner, answer) => this.route(inner, answer, path), this.jsonLimit),
      );
    } catch {
      socket.destroy();
    }
  };

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

    const encrypted = "encrypted" in request.socket && request.socket.encrypted === true;
    if (!encrypted && !this.access.hostAllowed(request.headers.host ?? "")) {
      const host = hostnameOf(request.headers.host ?? "");
      plainError(response, 421, hostRejectedMessage(host));
      return;
    }
    if (encrypted && this.refusesCommonName(request, path)) {
      plainError(response, 400, "CommonName of client sending a request against gateway will be ignored and not used as expected");
      return;
    }
    this.access.addCorsHeaders(request, response);
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
      if (this.options.fallback !== undefined && upgradeTo === undefined) this.options.fallback(request, response);
      else plainError(response, 404, "404 page not found");
      return;
    }
    if (upgradeTo !== undefined) upgradeTo(path);
    else this.route(request, response, path);
  }

  private refusesCommonName(request: IncomingMessage, path: string): boolean {
    if (this.options.clientCertAuth !== true || !path.startsWith("/v3/")) return false;
    if (this.options.isAuthEnabled?.() !== true) return false;
    const socket = request.socket as TLSSocket;
    if (!socket.authorized) return false;
    // getPeerCertificate() gives {} when the client sent no certificate, whatever its type says.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    const commonName = socket.getPeerCertificate().subject?.CN;
    return typeof commonName === "string" ? commonName.length > 0 : Array.isArray(commonName) && commonName.length > 0;
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
      ({ metadata, callOptions } = annotateCall(request));
    } catch (error) {
      if (isGatewayError(error, "Refused")) writeHttpError(response, { code: error.grpcCode, message: error.message });
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
      const method = service[route.method.name] as MethodDefinition<unknown, unknown>;
      definition = {
        ...method,
        // A request a decode thread encoded already is forwarded as it is (a message is never a Uint8Array).
        requestSerialize: (value: unknown) =>
          value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : method.requestSerialize(value),
        responseDeserialize: responseDeserializer(route.method.output),
      };
      this.definitions.set(route.method, definition);
    }
    return definition;
  }

  private track<T extends { cancel(): void; once(event: "status", listener: () => void): unknown }>(
    call: T,
    response: ServerResponse,
    streaming = false,
  ): T {
    // The HTTP client going away cancels the gRPC call, as the request context does in Go — also when it
    // went away while the body was still being read, before the call began.
    if (response.closed) {
      call.cancel();
      return call;
    }
    this.inFlight.add(call);
    if (streaming) this.streaming.add(response);
    const release = (): void => {
      this.inFlight.delete(call);
      this.streaming.delete(response);
    };
    call.once("status", release);
    response.once("close", () => {
      release();
      call.cancel();
    });
    return call;
  }

  /**
   * A request value over the limit: answered 429 / ResourceExhausted with `Connection: close`. The reader
   * has stopped buffering; what is left of the body is dropped while the connection lingers, then it is
   * closed.
   */
  private refuseTooLarge(request: IncomingMessage, response: ServerResponse): void {
    if (!response.headersSent) {
      response.setHeader("Connection", "close");
      if (request.socket instanceof Socket) {
        const socket = request.socket;
        response.once("finish", () => lingerBeforeClose(socket));
      }
    }
    writeHttpError(response, requestTooLargeStatus(this.jsonLimit, this.messageLimit));
  }

  /** The answer to a first request that could not be read; false if there is a message to send. */
  private answeredBadFirstRequest(
    request: IncomingMessage,
    response: ServerResponse,
    outcome: FirstRequest,
  ): outcome is Exclude<FirstRequest, { message: Message } | { encoded: Uint8Array }> {
    if ("message" in outcome || "encoded" in outcome) return false;
    if ("tooManyOps" in outcome) {
      // Too deep to encode, and too deep for any member: answered as the member answers too many ops.
      const [code, text] = rpcErrors.tooManyOps;
      writeHttpError(response, { code, message: text });
    } else if ("busy" in outcome) {
      // Every decode thread is taken and the queue is full: refused as an overloaded member refuses.
      const [code, text] = rpcErrors.tooManyRequests;
      writeHttpError(response, { code, message: text });
    } else if ("error" in outcome) {
      // request_X_0: a body jsonpb refuses is InvalidArgument.
      writeHttpError(response, { code: GrpcStatus.INVALID_ARGUMENT, message: outcome.error });
    } else if ("tooLarge" in outcome) {
      this.refuseTooLarge(request, response);
    } else {
      failRequest(response);
    }
    return true;
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
    readFirstRequest(
      request,
      route.method.input,
      bodyConsumed,
      this.jsonLimit,
      guarded(response, (outcome) => {
        if (this.answeredBadFirstRequest(request, response, outcome)) return;
        const message = "message" in outcome ? outcome.message : outcome.encoded;
        if ("message" in outcome && route.method.input === TxnRequestSchema && nestsTooDeep(outcome.message as TxnRequest)) {
          // Too deep to encode, and too deep for any member: answered as the member answers too many ops.
          const [code, text] = rpcErrors.tooManyOps;
          writeHttpError(response, { code, message: text });
          return;
        }
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
          guarded(response, (error: ServiceError | null, reply?: unknown) => {
            if (error !== null) {
              writeHttpError(response, statusOf(error), headers);
              return;
            }
            let body: string;
            try {
              body = encodeMessage(route.method.output, reply as Message);
            } catch (failure) {
              // ForwardResponseMessage: a reply the marshaler cannot write is an HTTPError of that error (Unknown).
              writeHttpError(
                response,
                { code: GrpcStatus.UNKNOWN, message: failure instanceof Error ? failure.message : String(failure) },
                headers,
              );
              return;
            }
            response.writeHead(200, {
              ...forwardedHeaders(headers),
              "Content-Type": "application/json",
              "Content-Length": Buffer.byteLength(body),
            });
            response.end(body);
          }),
        );
        call.on("metadata", (received: Metadata) => {
          headers = received;
        });
        this.track(call, response);
      }),
      this.decodePool,
    );
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
    readFirstRequest(
      request,
      route.method.input,
      bodyConsumed,
      this.jsonLimit,
      guarded(response, (outcome) => {
        if (this.answeredBadFirstRequest(request, response, outcome)) return;
        const message = "message" in outcome ? outcome.message : outcome.encoded;
        const call: ClientReadableStream<unknown> = this.client.makeServerStreamRequest(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          message,
          metadata,
          callOptions,
        );
        this.track(call, response, true);
        forwardStream(call, response, route.method.output);
      }),
      this.decodePool,
    );
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
    this.track(call, response, true);
    // Nothing is answered before the first request is through: etcd's Watch and LeaseKeepAlive send nothing
    // unasked, so forwarding can start at once.
    const forwarded = forwardStream(call, response, route.method.output);
    const decoder = new JsonValueStream(this.jsonLimit);
    let first = true;
    let sending = true;
    let pumping = false;
    const schema = route.method.input;
    /** Stops sending after a request value that cannot be sent, answering as etcd would. */
    // Once nothing more is sent, the rest of the body is read and dropped: a body paused for flow control
    // would otherwise keep its connection from ever seeing the client leave.
    const stopSending = (): void => {
      sending = false;
      request.resume();
    };
    call.once("status", stopSending);
    const refused = (error: unknown): void => {
      stopSending();
      if (isGatewayError(error, "JsonTooLarge")) {
        // The member would refuse the message and fail the stream: the same answer, and no more reading.
        if (!response.headersSent) {
          response.setHeader("Connection", "close");
          if (request.socket instanceof Socket) {
            const socket = request.socket;
            response.once("finish", () => lingerBeforeClose(socket));
          }
        }
        forwarded.fail(requestTooLargeStatus(this.jsonLimit, this.messageLimit));
        return;
      }
      call.end();
      if (first) {
        writeHttpError(response, { code: GrpcStatus.UNKNOWN, message: decodeErrorMessage(error) });
        call.cancel();
      }
    };
    // request_Watch_Watch_0: the first request is decoded before anything is forwarded; if it is bad the
    // answer is an HTTP error (Unknown, 500). Later bad requests just end the sending side, silently.
    // Values are decoded one after the other (a large one in slices); input arriving meanwhile waits in
    // the decoder and is taken by the running pump.
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (sending) {
          let value: ReturnType<JsonValueStream["next"]>;
          try {
            value = decoder.next();
          } catch (error) {
            refused(error);
            return;
          }
          if (value === undefined) return;
          if (!(value instanceof Uint8Array)) {
            stopSending();
            call.end();
            return;
          }
          let message: Message;
          try {
            message = await decodeMessageSliced(schema, value);
          } catch (error) {
            refused(error);
            return;
          }
          // The answer may have ended while the message was decoded.
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (!sending) return;
          first = false;
          // Flow control towards the member: while grpc-js holds back what was written, stop reading the body.
          if (!call.write(message) && !request.isPaused()) {
            request.pause();
            call.once("drain", () => request.resume());
          }
        }
      } finally {
        pumping = false;
      }
    };
    const runPump = (): void => {
      pump().catch(() => failRequest(response));
    };
    if (bodyConsumed) {
      decoder.finish();
      runPump();
      return;
    }
    request.on(
      "data",
      guarded(response, (chunk: Buffer) => {
        if (!sending) return;
        decoder.push(chunk);
        runPump();
      }),
    );
    const endOfBody = guarded(response, (): void => {
      decoder.finish();
      runPump();
    });
    request.on("end", endOfBody);
    request.on("error", endOfBody);
  }
}

/**
 * Ends one request after an unexpected error: 500 if nothing was answered yet, else the connection is cut
 * (a response 'close' cancels the request's call).
 */
function failRequest(response: ServerResponse): void {
  try {
    if (!response.headersSent) {
      plainError(response, 500, STATUS_TEXT[500]!);
      return;
    }
  } catch {
    // fall through: the response cannot be written any more
  }
  response.destroy();
}

/** `handler` as an event listener of one request: whatever it throws fails that request, never the process. */
function guarded<A extends unknown[]>(response: ServerResponse, handler: (...args: A) => void): (...args: A) => void {
  return (...args: A): void => {
    try {
      handler(...args);
    } catch {
      failRequest(response);
    }
  };
}

/** How long a connection closed with a body still arriving keeps reading it (Go's rstAvoidanceDelay). */
const LINGER_MS = 500;

/**
 * Go's closeWriteAndWait for a connection closed before its request body was read: the answer is flushed
 * and the write side shut, but what the client still sends is read (and dropped) for a moment before the
 * socket closes, so the client reads the answer instead of a reset. Called at the answer's 'finish', when
 * Node (for `Connection: close`) has just asked the socket to destroy itself once its writes are out; that
 * request is withdrawn and replaced by a timer.
 */
function lingerBeforeClose(socket: Socket): void {
  if (socket.destroyed) return;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the very function destroySoon registered, to remove it
  socket.removeListener("finish", socket.destroy);
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once("close", () => clearTimeout(timer));
}

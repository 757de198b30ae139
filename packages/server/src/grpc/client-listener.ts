import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { constants as http2Constants, type Http2Server, type ServerHttp2Session } from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type TlsOptions } from "node:tls";
import { ServerCredentials, type Server as GrpcServer } from "@grpc/grpc-js";
import { EARLY_SERVER_SETTINGS, inspectEarlyClientStream, normalizeAuthorityStream } from "./http2-authority.js";

/** What serves the plain HTTP/1.1 requests that arrive on a client URL (health, version, the JSON gateway). */
export type Http1Handler = (request: IncomingMessage, response: ServerResponse) => void;

const HTTP2_PREFACE_START = Buffer.from("PRI ");
/** How long an HTTP/2 client may go without a first request before its connection takes the rewriter path. */
const EARLY_DECISION_TIMEOUT_MS = 3000;
/** Bytes buffered at most while waiting for a client's first request. */
const EARLY_DECISION_MAX_BYTES = 1024 * 1024;

/**
 * One listener per client URL that serves gRPC and HTTP/1.1 on the same port, as etcd does: the first
 * bytes of a connection tell them apart (an HTTP/2 client starts with the `PRI * HTTP/2.0` preface, an
 * HTTP/1.1 request with a method name), then the socket goes to grpc-js or to the HTTP/1.1 server.
 */
export class ClientListener {
  private readonly netServer: NetServer;
  private readonly sockets = new Set<Socket>();
  private readonly http1: ReturnType<typeof createHttpServer>;

  /**
   * With `tls` (an https client URL) the listener terminates TLS first and splits the decrypted
   * stream the same way, so grpc-js gets it through the same insecure injector (its own TLS credentials
   * would want to own the socket from the first byte, which the HTTP/1.1 split cannot give it).
   */
  constructor(grpcServer: GrpcServer, http1Handler: Http1Handler, tls?: TlsOptions) {
    const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
    injectorHttp2Server(grpcServer).on("session", keepServingAfterClientGoaway);
    this.http1 = createHttpServer(http1Handler);
    this.http1.keepAliveTimeout = 30_000;
    const onConnection = (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      let seen: Buffer = Buffer.alloc(0);
      let http2 = false;
      let fallback: NodeJS.Timeout | undefined;
      const done = () => {
        socket.off("data", onData);
        socket.pause();
        clearTimeout(fallback);
      };
      // The slow but always-correct HTTP/2 path: every header block re-encoded without a scheme.
      const rewrite = () => {
        done();
        injector.injectConnection(normalizeAuthorityStream(socket, { bytes: seen, dropFirstSettingsAck: true }));
      };
      const onData = (chunk: Buffer) => {
        seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
        if (!http2) {
          if (seen.length < HTTP2_PREFACE_START.length && HTTP2_PREFACE_START.subarray(0, seen.length).equals(seen)) return;
          if (!seen.subarray(0, HTTP2_PREFACE_START.length).equals(HTTP2_PREFACE_START)) {
            done();
            socket.unshift(seen);
            this.http1.emit("connection", socket);
            socket.resume();
            return;
          }
          http2 = true;
          socket.write(EARLY_SERVER_SETTINGS);
          // A client that sends no request for a while still gets served, through the rewriter.
          fallback = setTimeout(rewrite, EARLY_DECISION_TIMEOUT_MS);
        }
        const early = inspectEarlyClientStream(seen);
        if (early === undefined) {
          if (seen.length > EARLY_DECISION_MAX_BYTES) rewrite();
          return;
        }
        if (early.authorityHasScheme) {
          // etcdctl dials http:// endpoints with the scheme in :authority, which Node's HTTP/2 refuses.
          rewrite();
          return;
        }
        done();
        // Node's HTTP/2 session reads what is buffered on the socket itself: the native, fast path.
        socket.unshift(early.bytes);
        injector.injectConnection(socket);
      };
      socket.on("data", onData);
      socket.on("error", () => socket.destroy());
    };
    if (tls === undefined) {
      this.netServer = createNetServer({ noDelay: true }, onConnection);
    } else {
      this.netServer = createTlsServer({ ...tls, ALPNCallback: chooseAlpn }, onConnection);
      // Raw sockets still in the handshake are tracked too, so close() does not wait for them.
      this.netServer.on("connection", (raw: Socket) => {
        raw.setNoDelay(true);
        this.sockets.add(raw);
        raw.once("close", () => this.sockets.delete(raw));
      });
      this.netServer.on("tlsClientError", (_error: Error, raw: Socket) => raw.destroy());
    }
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.netServer.once("error", reject);
      this.netServer.listen({ host, port }, () => {
        this.netServer.off("error", reject);
        resolve();
      });
    });
  }

  /** The port actually bound (useful with port 0 in tests). */
  get port(): number {
    const address = this.netServer.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.netServer.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
    this.http1.close();
  }
}

/**
 * The HTTP/2 server grpc-js made for the injector just created: grpc-js keeps it, with no public accessor,
 * as the newest key of its `http2Servers` map. Checked at start, so a grpc-js that changes this fails loudly.
 */
function injectorHttp2Server(grpcServer: GrpcServer): Http2Server {
  const servers = (grpcServer as unknown as { http2Servers?: unknown }).http2Servers;
  const newest: unknown = servers instanceof Map ? [...(servers as Map<unknown, unknown>).keys()].at(-1) : undefined;
  if (newest === undefined || typeof (newest as Http2Server).on !== "function") {
    throw new Error("client listener: grpc-js no longer exposes the HTTP/2 server of a connection injector");
  }
  return newest as Http2Server;
}

/**
 * A client closing its connection gracefully sends GOAWAY(NO_ERROR) and lets its open streams finish;
 * nghttp2 (grpc-js's HTTP/2) puts that GOAWAY on the wire before the HEADERS of streams opened in the same
 * turn. Node's server answers a client's GOAWAY by closing the session, which sends its own GOAWAY naming
 * the last stream it has processed: those later streams are refused, and grpc-js retries them on the
 * channel being closed, failing with UNAVAILABLE. grpc-go (etcd's server) ignores a client's GOAWAY and
 * serves them; the client ends the connection once its streams are done. So do we: the close() Node calls
 * right after emitting 'goaway' is skipped. An error code in the GOAWAY still destroys the session.
 */
function keepServingAfterClientGoaway(session: ServerHttp2Session): void {
  let skipClose = false;
  session.on("goaway", (code: number) => {
    if (code !== http2Constants.NGHTTP2_NO_ERROR) return;
    skipClose = true;
    // Node closes synchronously after the event; a later close (server shutdown) must not be skipped.
    queueMicrotask(() => (skipClose = false));
  });
  const close = session.close.bind(session);
  session.close = (callback?: () => void) => {
    if (skipClose) {
      skipClose = false;
      return;
    }
    close(callback);
  };
}

/** Splits a client URL (`http://127.0.0.1:2379`) into what `listen` needs. `localhost` binds IPv4 loopback. */
export function parseListenUrl(url: string): { host: string; port: number; secure: boolean } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`invalid listen URL "${url}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new Error(`URL scheme must be http, https, unix, or unixs: ${url}`);
  if (parsed.port === "") throw new Error(`missing port in address "${url}"`);
  let host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost") host = "127.0.0.1";
  return { host, port: Number(parsed.port), secure: parsed.protocol === "https:" };
}

/**
 * ALPN for a client port that serves gRPC and HTTP/1.1: a client that offers HTTP/1.1 (curl, browsers)
 * gets it, so its requests reach the HTTP/1.1 routes and the gateway; one that offers only h2 (gRPC
 * clients) gets h2. Either way the first bytes still decide where the stream goes.
 */
function chooseAlpn({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes("http/1.1")) return "http/1.1";
  if (protocols.includes("h2")) return "h2";
  return undefined;
}

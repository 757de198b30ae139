import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type TlsOptions } from "node:tls";
import type { GrpcServer } from "./transport/grpc-server.js";

/** What serves the plain HTTP/1.1 requests that arrive on a client URL (health, version, the JSON gateway). */
export type Http1Handler = (request: IncomingMessage, response: ServerResponse) => void;

const HTTP2_PREFACE_START = Buffer.from("PRI ");

/**
 * One listener per client URL that serves gRPC and HTTP/1.1 on the same port, as etcd does: the first
 * bytes of a connection tell them apart (an HTTP/2 client starts with the `PRI * HTTP/2.0` preface, an
 * HTTP/1.1 request with a method name), then the socket goes to the gRPC server or to the HTTP/1.1 server.
 */
export class ClientListener {
  private readonly netServer: NetServer;
  private readonly sockets = new Set<Socket>();
  private readonly http1: ReturnType<typeof createHttpServer>;

  /**
   * With `tls` (an https client URL) the listener terminates TLS first and splits the decrypted stream
   * the same way.
   */
  constructor(grpcServer: GrpcServer, http1Handler: Http1Handler, tls?: TlsOptions) {
    this.http1 = createHttpServer(http1Handler);
    this.http1.keepAliveTimeout = 30_000;
    const onConnection = (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      let seen: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
        if (seen.length < HTTP2_PREFACE_START.length && HTTP2_PREFACE_START.subarray(0, seen.length).equals(seen)) return;
        socket.off("data", onData);
        if (seen.subarray(0, HTTP2_PREFACE_START.length).equals(HTTP2_PREFACE_START)) {
          grpcServer.serveConnection(socket, seen);
          return;
        }
        socket.pause();
        socket.unshift(seen);
        this.http1.emit("connection", socket);
        socket.resume();
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

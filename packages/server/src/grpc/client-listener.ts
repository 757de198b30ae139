import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { ServerCredentials, type Server as GrpcServer } from "@grpc/grpc-js";
import { normalizeAuthorityStream } from "./http2-authority.js";

/** What serves the plain HTTP/1.1 requests that arrive on a client URL (health, version, the JSON gateway). */
export type Http1Handler = (request: IncomingMessage, response: ServerResponse) => void;

const HTTP2_PREFACE_START = Buffer.from("PRI ");

/**
 * One listener per client URL that serves gRPC and HTTP/1.1 on the same port, as etcd does: the first
 * bytes of a connection tell them apart (an HTTP/2 client starts with the `PRI * HTTP/2.0` preface, an
 * HTTP/1.1 request with a method name), then the socket goes to grpc-js or to the HTTP/1.1 server.
 */
export class ClientListener {
  private readonly netServer: NetServer;
  private readonly sockets = new Set<Socket>();
  private readonly http1: ReturnType<typeof createHttpServer>;

  constructor(grpcServer: GrpcServer, http1Handler: Http1Handler) {
    const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
    this.http1 = createHttpServer(http1Handler);
    this.http1.keepAliveTimeout = 30_000;
    this.netServer = createNetServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      let seen: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
        if (seen.length < HTTP2_PREFACE_START.length && HTTP2_PREFACE_START.subarray(0, seen.length).equals(seen)) return;
        socket.off("data", onData);
        socket.pause();
        socket.unshift(seen);
        if (seen.subarray(0, HTTP2_PREFACE_START.length).equals(HTTP2_PREFACE_START)) {
          // Node's HTTP/2 session reads what is already buffered on the socket itself; resuming the
          // socket here would drain the preface into no listener.
          // Through the :authority normalizer: etcdctl dials http:// endpoints with the scheme in it.
          injector.injectConnection(normalizeAuthorityStream(socket));
        } else {
          this.http1.emit("connection", socket);
          socket.resume();
        }
      };
      socket.on("data", onData);
      socket.on("error", () => socket.destroy());
    });
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
export function parseListenUrl(url: string): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`invalid listen URL "${url}"`);
  }
  if (parsed.protocol === "https:" || parsed.protocol === "unixs:") {
    throw new Error(`TLS listener "${url}" needs --cert-file and --key-file, which this member was not given`);
  }
  if (parsed.protocol !== "http:") throw new Error(`URL scheme must be http, https, unix, or unixs: ${url}`);
  if (parsed.port === "") throw new Error(`missing port in address "${url}"`);
  let host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost") host = "127.0.0.1";
  return { host, port: Number(parsed.port) };
}

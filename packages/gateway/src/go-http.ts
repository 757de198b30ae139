/**
 * The behaviours of Go's net/http that show in etcd's answers outside grpc-gateway itself: status texts,
 * `http.Error`, `http.Redirect`, `http.ServeMux`'s path cleaning, canonical header keys — and a minimal
 * ServerResponse stand-in for answering on a raw socket (an upgrade request that is not upgraded).
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { posix } from "node:path";
import type { Duplex } from "node:stream";

/** Go's http.StatusText for the statuses the gateway can produce. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
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

/** Go's textproto.CanonicalMIMEHeaderKey for ordinary header names. */
export function canonicalHeaderKey(key: string): string {
  return key
    .toLowerCase()
    .split("-")
    .map((part) => (part === "" ? part : part[0]!.toUpperCase() + part.slice(1)))
    .join("-");
}

/** Go's http.Error: a text/plain body with a trailing newline. */
export function plainError(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    "Content-Length": Buffer.byteLength(message) + 1,
  });
  response.end(`${message}\n`);
}

/** Go's http.Redirect with 301, as http.ServeMux uses it. */
export function redirect(request: IncomingMessage, response: ServerResponse, location: string): void {
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
export function cleanPath(p: string): string {
  if (p === "") return "/";
  if (!p.startsWith("/")) p = `/${p}`;
  let np = posix.normalize(p);
  if (np.length > 1 && np.endsWith("/") && !p.endsWith("/")) np = np.slice(0, -1);
  if (np.startsWith("//")) np = np.replace(/^\/+/, "/");
  return np;
}

export function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function hostnameOf(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon < 0 ? host : host.slice(0, colon);
}

/** How long a raw answer's connection waits for the client to close it. */
const RAW_ANSWER_LINGER_MS = 5000;

/**
 * The subset of ServerResponse the gateway uses, written as a plain HTTP/1.1 answer on a raw socket (for
 * upgrade requests that are answered without upgrading); the connection closes after it.
 */
export class RawHttpResponse extends EventEmitter {
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
    // An upgraded socket is half-open: it closes once the client's end is read, so read (and drop) what
    // is left; a client that never ends is cut off after a while.
    this.socket.resume();
    const timer = setTimeout(() => this.socket.destroy(), RAW_ANSWER_LINGER_MS);
    timer.unref();
    this.socket.once("close", () => clearTimeout(timer));
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    this.socket.destroy();
    return this;
  }
}

/**
 * A small HTTP/1.1 and websocket client for comparing the gateway's answers with etcd's own gateway, as
 * curl and a browser would send them.
 */
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: Record<string, string | undefined>;
}

export interface HttpCall {
  readonly url: string;
  readonly method: string;
  readonly path: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** For streams: stop reading after this many milliseconds and return what arrived (curl --max-time). */
  readonly cutAfterMs?: number;
  /** For https: URLs, the CA to trust and the client certificate to present (PEM). */
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string };
}

/** One HTTP/1.1 request, as curl -d sends it (form content type unless told otherwise). */
export function send(call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(call.path, call.url);
    const headers: Record<string, string> = { ...call.headers };
    if (call.body !== undefined) {
      headers["content-type"] ??= "application/x-www-form-urlencoded";
      headers["content-length"] = String(Buffer.byteLength(call.body));
    }
    const request = target.protocol === "https:" ? httpsRequest : httpRequest;
    const req = request(
      { host: target.hostname, port: target.port, method: call.method, path: call.path, headers, agent: false, ...call.tls },
      (res) => {
        let body = "";
        let timer: NodeJS.Timeout | undefined;
        const finish = (): void => {
          if (timer !== undefined) clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: { ...res.trailers } });
        };
        if (call.cutAfterMs !== undefined) {
          timer = setTimeout(() => {
            res.destroy();
            finish();
          }, call.cutAfterMs);
        }
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", finish);
        res.on("error", () => finish());
      },
    );
    if (call.cutAfterMs !== undefined) {
      // A stream that never answers (no status line) is cut the same way: an empty answer.
      const timer = setTimeout(() => {
        req.destroy();
        resolve({ status: 0, headers: {}, body: "", trailers: {} });
      }, call.cutAfterMs);
      req.once("response", () => clearTimeout(timer));
    }
    req.on("error", (error) => {
      if (call.cutAfterMs === undefined) reject(error);
    });
    req.end(call.body);
  });
}

export interface WebSocketSession {
  /** The handshake answer's status line (or the whole answer if it was not upgraded). */
  readonly statusLine: string;
  /** Text messages received, in order. */
  readonly messages: string[];
  /** The raw answer when the server refused to upgrade. */
  readonly refusal?: string;
}

/**
 * A minimal websocket client: GET `path` with an upgrade, send `messages` as masked text frames, collect the
 * server's text frames until it closes or `cutAfterMs` passes.
 */
export function websocketSession(
  url: string,
  path: string,
  messages: readonly string[],
  cutAfterMs: number,
  extraHeaders: Record<string, string> = {},
): Promise<WebSocketSession> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(target.port), target.hostname);
    let buffer = Buffer.alloc(0);
    let statusLine: string | undefined;
    const received: string[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const refused = statusLine !== undefined && !statusLine.includes(" 101 ");
      resolve({ statusLine: statusLine ?? "", messages: received, ...(refused ? { refusal: buffer.toString() } : {}) });
    };
    const timer = setTimeout(() => finish(), cutAfterMs);
    socket.on("connect", () => {
      const headers = {
        Host: `${target.hostname}:${target.port}`,
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        ...extraHeaders,
      };
      const method = extraHeaders["X-Test-Method"] ?? "GET";
      const lines = [
        `${method} ${path} HTTP/1.1`,
        ...Object.entries(headers)
          .filter(([k]) => k !== "X-Test-Method")
          .map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (statusLine === undefined) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString();
        statusLine = head.split("\r\n")[0]!;
        if (!statusLine.includes(" 101 ")) return; // the refusal is collected until close or the cut
        buffer = buffer.subarray(end + 4);
        for (const message of messages) socket.write(maskedTextFrame(message));
      }
      while (statusLine.includes(" 101 ") && buffer.length >= 2) {
        let length = buffer[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const opcode = buffer[0]! & 0x0f;
        if (opcode === 1) received.push(buffer.subarray(offset, offset + length).toString());
        buffer = buffer.subarray(offset + length);
      }
    });
    socket.on("close", () => finish());
    socket.on("error", () => finish());
  });
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const header =
    payload.length < 126
      ? Buffer.from([0x81, 0x80 | payload.length])
      : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([header, mask, masked]);
}

/**
 * tmc/grpc-websocket-proxy, which etcd wraps around its gateway: a websocket to a `/v3/…` route is turned
 * into an internal POST of that route whose body is the client's messages and whose answer lines go back
 * as text messages.
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough, type Duplex } from "node:stream";
import { STATUS_TEXT, headerValue, plainError } from "./go-http.js";
import { isGatewayError } from "./errors.js";
import { CLOSE_MESSAGE_TOO_BIG, Opcode, WebSocketFrameParser, acceptKey, encodeFrame } from "./websocket.js";

/**
 * tmc/grpc-websocket-proxy as etcd mounts it on `/v3/`: gorilla's handshake checks, then an internal
 * POST of the same path whose body is the client's messages (each followed by a newline) and whose answer
 * lines are sent back as text messages. Authorization comes from `Sec-WebSocket-Protocol: Bearer, <t>` or
 * a `token` cookie; Origin and Referer are forwarded. A message longer than `maxMessageBytes` closes the
 * websocket with 1009 (message too big). Both directions are flow-controlled: the socket is not read while
 * the internal request body is full, and the answer reports its socket's buffer so the stream behind it
 * pauses while the client does not read.
 */
export function proxyWebsocket(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  path: string,
  response: ServerResponse,
  serve: (request: IncomingMessage, response: ServerResponse) => void,
  maxMessageBytes = Number.MAX_SAFE_INTEGER,
): void {
  const tokenIn = (name: string, value: string): boolean =>
    (headerValue(request, name) ?? "").split(",").some((token) => token.trim().toLowerCase() === value);
  if (!tokenIn("connection", "upgrade") || !tokenIn("upgrade", "websocket")) {
    plainError(response, 400, STATUS_TEXT[400]!);
    return;
  }
  const handshakeError = (status: number): void => {
    response.setHeader("Sec-Websocket-Version", "13");
    plainError(response, status, STATUS_TEXT[status]!);
  };
  if (request.method !== "GET") {
    handshakeError(405);
    return;
  }
  if (!tokenIn("sec-websocket-version", "13")) {
    handshakeError(400);
    return;
  }
  const key = headerValue(request, "sec-websocket-key") ?? "";
  if (key.trim() === "") {
    handshakeError(400);
    return;
  }
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
  // Errors of the internal body (a write racing its end) concern this session only.
  body.on("error", () => undefined);
  const inner = Object.assign(body, {
    method: "POST",
    url: path + (queryAt < 0 ? "" : (request.url ?? "").slice(queryAt)),
    headers,
    rawHeaders: Object.entries(headers).flat(),
    socket: { remoteAddress: undefined, encrypted: false },
  }) as unknown as IncomingMessage;
  const answer = new WebSocketLineResponse(socket);
  const parser = new WebSocketFrameParser(maxMessageBytes);
  let open = true;
  const shutDown = (): void => {
    if (!open) return;
    open = false;
    body.end();
    answer.abort();
    // A socket paused for flow control would never read the client's end and never close.
    socket.resume();
  };
  const onData = (chunk: Buffer): void => {
    try {
      receive(chunk);
    } catch {
      shutDown();
      socket.destroy();
    }
  };
  const receive = (chunk: Buffer): void => {
    if (!open) return;
    let messages;
    try {
      messages = parser.push(chunk);
    } catch (error) {
      if (isGatewayError(error, "WebSocketProtocol") && error.closeCode === CLOSE_MESSAGE_TOO_BIG) {
        const payload = Buffer.alloc(2);
        payload.writeUInt16BE(CLOSE_MESSAGE_TOO_BIG);
        socket.write(encodeFrame(Opcode.close, payload));
      }
      shutDown();
      return;
    }
    for (const message of messages) {
      // Writing a message may end the answer at once (a bad request), which shuts the session down.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      if (!open) return;
      if (message.opcode === Opcode.text || message.opcode === Opcode.binary) {
        body.write(message.payload);
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (!open) return;
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (!body.write("\n") && open && !socket.isPaused()) {
          socket.pause();
          body.once("drain", () => socket.resume());
        }
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
  // The answer is over (the proxy closes the connection after it): stop taking messages.
  answer.once("close", shutDown);
  if (head.length > 0) onData(head);
  serve(inner, answer as unknown as ServerResponse);
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
  /** Set when 'close' is emitted, as on a ServerResponse. */
  closed = false;
  private pending = "";

  constructor(private readonly socket: Duplex) {
    super();
    socket.on("drain", () => this.emit("drain"));
  }

  /** Bytes written and not yet sent: the line in progress and the socket's buffer. */
  get writableLength(): number {
    return this.pending.length + this.socket.writableLength;
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
    let flowing = true;
    while ((newline = this.pending.indexOf("\n")) >= 0) {
      flowing = this.send(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
    }
    return flowing && !this.socket.writableNeedDrain;
  }

  end(chunk?: string | Buffer): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined) this.write(chunk);
    this.send(this.pending);
    this.pending = "";
    this.writableEnded = true;
    this.socket.end();
    this.closed = true;
    this.emit("close");
    return this;
  }

  /** The client went away: the call is cancelled through "close". */
  abort(): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    this.destroyed = true;
    this.socket.end();
    this.closed = true;
    this.emit("close");
  }

  destroy(): this {
    this.abort();
    return this;
  }

  /** Sends one line as a text message; false once the socket's buffer is full. */
  private send(line: string): boolean {
    if (line.length === 0 || this.socket.destroyed) return true;
    return this.socket.write(encodeFrame(Opcode.text, Buffer.from(line)));
  }
}

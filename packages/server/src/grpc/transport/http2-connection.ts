import type { Duplex } from "node:stream";
import { HpackDecoder, HpackError } from "./hpack.js";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  ErrorCode,
  FRAME_HEADER_BYTES,
  Flag,
  FrameType,
  MAX_WINDOW_SIZE,
  SETTINGS_ACK,
  Setting,
  frame,
  goawayFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from "./frames.js";

/** What a connection is configured with. */
export interface Http2ConnectionOptions {
  /** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
  readonly maxConcurrentStreams: number;
  /** Bytes a header list may decode to (names + values + 32 per field) before the connection is dropped. */
  readonly maxHeaderListSize?: number;
}

/** What a connection tells its owner: a stream opened with these header fields (names and values alternating). */
export type StreamOpened = (stream: Http2ServerStream, fields: readonly string[]) => void;

/** The stream window we grant; replenished as the stream's data is consumed. */
const STREAM_WINDOW = 1 << 20;
/** The connection window we grant (over all streams); replenished once a quarter of it is consumed. */
const CONNECTION_WINDOW = 16 << 20;
const DEFAULT_MAX_HEADER_LIST_SIZE = 1 << 20;
/** Output buffered for the socket past which writers are told to wait (their `write` returns false). */
const SOCKET_HIGH_WATER = 4 << 20;
/** A stream's own unsent data past which its writer is told to wait. */
const STREAM_HIGH_WATER = 256 << 10;
/** Frames of one turn are copied into one buffer up to this size; larger output is written as a vector. */
const COALESCE_LIMIT = 64 << 10;

/** Every connection with output waiting, written out together once the current turn of the event loop ends. */
const dirtyConnections = new Set<Http2ServerConnection>();
let flushScheduled = false;
function scheduleFlush(connection: Http2ServerConnection): void {
  dirtyConnections.add(connection);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushAll);
}
function flushAll(): void {
  flushScheduled = false;
  for (const connection of dirtyConnections) connection.flush();
  dirtyConnections.clear();
}

/**
 * One stream of a server connection. The owner sets the callbacks; writes go to the connection, which
 * keeps HTTP/2 flow control (data beyond the client's windows waits here until it grants more).
 */
export class Http2ServerStream {
  /** The client's data for this stream (already counted against flow control). */
  onData: (payload: Buffer) => void = () => undefined;
  /** The client has half-closed: no more data will come. */
  onEnd: () => void = () => undefined;
  /** The client reset the stream, or the connection went away, before the stream was closed. */
  onAbort: () => void = () => undefined;
  /** Data that had to wait for flow control has left; the writer may write more. */
  onDrain: () => void = () => undefined;

  /** The client has sent END_STREAM. */
  remoteClosed = false;
  /** This side has sent its last frame (END_STREAM or RST_STREAM). */
  localClosed = false;
  /** Set when the writer was told to wait: `onDrain` is due once the queue empties. */
  wantsDrain = false;
  sendWindow: number;
  /** Data frames (payloads) waiting for window; then the trailers block that ends the stream, if any. */
  readonly pending: Buffer[] = [];
  pendingBytes = 0;
  pendingTrailers: Buffer | undefined = undefined;
  /** Bytes received since the last WINDOW_UPDATE for this stream. */
  unacknowledged = 0;
  /** While paused, this stream's window is not replenished, so the client stops sending. */
  paused = false;
  private headersSent = false;

  constructor(
    readonly connection: Http2ServerConnection,
    readonly id: number,
    initialWindow: number,
  ) {
    this.sendWindow = initialWindow;
  }

  /** The response header block; `endStream` makes it a trailers-only response. */
  sendHeaders(block: Buffer, endStream = false): void {
    if (this.localClosed) return;
    this.headersSent = true;
    this.connection.writeHeaderBlock(this.id, block, endStream);
    if (endStream) this.closeLocal();
  }

  get hasSentHeaders(): boolean {
    return this.headersSent;
  }

  /**
   * Sends `prefix` and `body` as data (prefix first; either may be empty). Returns false when the writer
   * should wait for `onDrain` before writing more.
   */
  sendData(prefix: Buffer, body: Uint8Array): boolean {
    if (this.localClosed) return false;
    return this.connection.writeData(this, prefix, body);
  }

  /** Ends the stream with a trailers block, after any data still waiting for flow control. */
  sendTrailers(block: Buffer): void {
    if (this.localClosed) return;
    if (this.pendingBytes > 0) {
      this.pendingTrailers = block;
      return;
    }
    this.connection.writeHeaderBlock(this.id, block, true);
    this.closeLocal();
  }

  /** Resets the stream (RST_STREAM) without a status, as on a cancelled call. */
  reset(code: ErrorCode): void {
    if (this.localClosed) return;
    this.localClosed = true;
    this.connection.writeFrame(rstStreamFrame(this.id, code));
    this.connection.forget(this);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection.acknowledge(this);
  }

  /** @internal Called once the trailers (END_STREAM) are written. */
  closeLocal(): void {
    this.localClosed = true;
    this.pending.length = 0;
    this.pendingBytes = 0;
    // The client may still be sending (a bidirectional stream ended by the server): tell it to stop,
    // as HTTP/2 servers do, so the stream does not stay half-open on its side.
    if (!this.remoteClosed) this.connection.writeFrame(rstStreamFrame(this.id, ErrorCode.NoError));
    this.connection.forget(this);
  }
}

/**
 * The server side of one HTTP/2 connection (RFC 9113), enough for gRPC: frames parsed from the socket,
 * HPACK-decoded request headers, flow control both ways, SETTINGS/PING/GOAWAY/RST_STREAM, and every frame
 * the connection writes in a turn of the event loop leaving in one socket write. Streams are plain objects
 * with callbacks rather than Node streams: a request costs a few allocations, not a stream machine.
 */
export class Http2ServerConnection {
  private readonly streams = new Map<number, Http2ServerStream>();
  private readonly decoder = new HpackDecoder();
  private input: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private settingsSeen = false;
  private lastStreamId = 0;
  /** Header block fragments of a HEADERS frame still waiting for its CONTINUATION frames. */
  private headerFragments: Buffer[] | undefined = undefined;
  private headerStreamId = 0;
  private headerEndStream = false;
  private peerInitialWindow = DEFAULT_WINDOW_SIZE;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private connectionSendWindow = DEFAULT_WINDOW_SIZE;
  private connectionUnacknowledged = 0;
  /** Streams with data waiting for the connection window. */
  private readonly blocked = new Set<Http2ServerStream>();
  private readonly output: Buffer[] = [];
  private outputBytes = 0;
  private closed = false;
  private readonly maxHeaderListSize: number;

  constructor(
    private readonly socket: Duplex,
    private readonly options: Http2ConnectionOptions,
    private readonly onStream: StreamOpened,
  ) {
    this.maxHeaderListSize = options.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
    this.writeFrame(
      settingsFrame([
        [Setting.MaxConcurrentStreams, Math.min(options.maxConcurrentStreams, 0xffffffff)],
        [Setting.InitialWindowSize, STREAM_WINDOW],
        [Setting.MaxHeaderListSize, this.maxHeaderListSize],
      ]),
    );
    this.writeFrame(windowUpdateFrame(0, CONNECTION_WINDOW - DEFAULT_WINDOW_SIZE));
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("drain", () => this.drainWriters());
    socket.on("close", () => this.abortAll());
    socket.on("error", () => socket.destroy());
    socket.on("end", () => socket.end());
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Sends GOAWAY and closes the socket (streams still open are aborted). */
  close(): void {
    if (this.closed) return;
    this.writeFrame(goawayFrame(this.lastStreamId, ErrorCode.NoError));
    this.flush();
    this.closed = true;
    this.socket.end();
    this.abortAll();
  }

  /** Feeds bytes read from the socket (the owner may pass bytes it read before handing the socket over). */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    let data = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    try {
      if (!this.prefaceSeen) {
        if (data.length < CLIENT_PREFACE.length) {
          if (!CLIENT_PREFACE.subarray(0, data.length).equals(data)) throw new ConnectionError(ErrorCode.ProtocolError, "bad preface");
          this.input = data;
          return;
        }
        if (!data.subarray(0, CLIENT_PREFACE.length).equals(CLIENT_PREFACE))
          throw new ConnectionError(ErrorCode.ProtocolError, "bad preface");
        this.prefaceSeen = true;
        data = data.subarray(CLIENT_PREFACE.length);
      }
      let offset = 0;
      while (data.length - offset >= FRAME_HEADER_BYTES) {
        const length = (data[offset]! << 16) | (data[offset + 1]! << 8) | data[offset + 2]!;
        if (length > DEFAULT_MAX_FRAME_SIZE) throw new ConnectionError(ErrorCode.FrameSizeError, "frame too large");
        const end = offset + FRAME_HEADER_BYTES + length;
        if (end > data.length) break;
        const type = data[offset + 3]!;
        const flags = data[offset + 4]!;
        const streamId = data.readUInt32BE(offset + 5) & 0x7fffffff;
        this.handleFrame(type, flags, streamId, data.subarray(offset + FRAME_HEADER_BYTES, end));
        offset = end;
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a frame may close the connection
        if (this.closed) return;
      }
      this.input = offset === data.length ? EMPTY_BUFFER : data.subarray(offset);
      if (this.connectionUnacknowledged >= CONNECTION_WINDOW / 4) {
        this.writeFrame(windowUpdateFrame(0, this.connectionUnacknowledged));
        this.connectionUnacknowledged = 0;
      }
    } catch (error) {
      if (!(error instanceof ConnectionError)) throw error;
      this.fail(error.code, error.message);
    }
  }

  private handleFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.headerFragments !== undefined && type !== FrameType.Continuation) {
      throw new ConnectionError(ErrorCode.ProtocolError, "expected CONTINUATION");
    }
    if (!this.settingsSeen && type !== FrameType.Settings) throw new ConnectionError(ErrorCode.ProtocolError, "first frame not SETTINGS");
    switch (type) {
      case FrameType.Data:
        this.onDataFrame(flags, streamId, payload);
        return;
      case FrameType.Headers:
        this.onHeadersFrame(flags, streamId, payload);
        return;
      case FrameType.Continuation:
        if (this.headerFragments === undefined || streamId !== this.headerStreamId) {
          throw new ConnectionError(ErrorCode.ProtocolError, "unexpected CONTINUATION");
        }
        this.headerFragments.push(payload);
        if ((flags & Flag.EndHeaders) !== 0) {
          const block = Buffer.concat(this.headerFragments);
          this.headerFragments = undefined;
          this.onHeaderBlock(streamId, block, this.headerEndStream);
        }
        return;
      case FrameType.RstStream: {
        if (streamId === 0 || payload.length !== 4) throw new ConnectionError(ErrorCode.ProtocolError, "bad RST_STREAM");
        const stream = this.streams.get(streamId);
        if (stream !== undefined) {
          stream.localClosed = true;
          this.forget(stream);
          stream.onAbort();
        }
        return;
      }
      case FrameType.Settings:
        this.onSettingsFrame(flags, streamId, payload);
        return;
      case FrameType.Ping:
        if (streamId !== 0 || payload.length !== 8) throw new ConnectionError(ErrorCode.ProtocolError, "bad PING");
        if ((flags & Flag.Ack) === 0) this.writeFrame(frame(FrameType.Ping, Flag.Ack, 0, payload));
        return;
      case FrameType.Goaway:
        // A client going away still gets the answers to streams it opened (it closes the socket when
        // they are done), as grpc-go's server does.
        return;
      case FrameType.WindowUpdate:
        this.onWindowUpdate(streamId, payload);
        return;
      case FrameType.PushPromise:
        throw new ConnectionError(ErrorCode.ProtocolError, "PUSH_PROMISE from a client");
      default:
        // PRIORITY and unknown frame types are ignored (RFC 9113 §5.5).
        return;
    }
  }

  private onSettingsFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.ProtocolError, "SETTINGS on a stream");
    if ((flags & Flag.Ack) !== 0) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FrameSizeError, "SETTINGS ack with payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FrameSizeError, "SETTINGS length");
    this.settingsSeen = true;
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (id === Setting.InitialWindowSize) {
        if (value > MAX_WINDOW_SIZE) throw new ConnectionError(ErrorCode.FlowControlError, "initial window too large");
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (delta > 0 && stream.pendingBytes > 0) this.sendPending(stream);
        }
      } else if (id === Setting.MaxFrameSize) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 0xffffff) throw new ConnectionError(ErrorCode.ProtocolError, "bad max frame size");
        this.peerMaxFrameSize = value;
      }
      // Header table size: response blocks never use the dynamic table, so any size suits them.
    }
    this.writeFrame(SETTINGS_ACK);
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FrameSizeError, "WINDOW_UPDATE length");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.ProtocolError, "zero window increment");
      this.connectionSendWindow += increment;
      if (this.connectionSendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(ErrorCode.FlowControlError, "window overflow");
      for (const stream of [...this.blocked]) {
        this.blocked.delete(stream);
        this.sendPending(stream);
        if (this.connectionSendWindow <= 0) break;
      }
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    if (increment === 0) {
      this.resetStream(stream, ErrorCode.ProtocolError);
      return;
    }
    stream.sendWindow += increment;
    if (stream.pendingBytes > 0 || stream.pendingTrailers !== undefined) this.sendPending(stream);
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0 || streamId % 2 === 0) throw new ConnectionError(ErrorCode.ProtocolError, "bad HEADERS stream id");
    let block = payload;
    if ((flags & Flag.Padded) !== 0) block = unpad(block);
    if ((flags & Flag.Priority) !== 0) {
      if (block.length < 5) throw new ConnectionError(ErrorCode.FrameSizeError, "HEADERS priority");
      block = block.subarray(5);
    }
    const endStream = (flags & Flag.EndStream) !== 0;
    if ((flags & Flag.EndHeaders) === 0) {
      this.headerFragments = [Buffer.from(block)];
      this.headerStreamId = streamId;
      this.headerEndStream = endStream;
      return;
    }
    this.onHeaderBlock(streamId, block, endStream);
  }

  private onHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    let fields: string[];
    try {
      fields = this.decoder.decode(block, this.maxHeaderListSize);
    } catch (error) {
      if (error instanceof HpackError) throw new ConnectionError(ErrorCode.CompressionError, error.message);
      throw error;
    }
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers from the client: only their END_STREAM matters to gRPC.
      if (!endStream) {
        this.resetStream(existing, ErrorCode.ProtocolError);
        return;
      }
      existing.remoteClosed = true;
      existing.onEnd();
      return;
    }
    if (streamId <= this.lastStreamId) throw new ConnectionError(ErrorCode.ProtocolError, "stream id reused");
    this.lastStreamId = streamId;
    if (this.streams.size >= this.options.maxConcurrentStreams) {
      this.writeFrame(rstStreamFrame(streamId, ErrorCode.RefusedStream));
      return;
    }
    const stream = new Http2ServerStream(this, streamId, this.peerInitialWindow);
    this.streams.set(streamId, stream);
    stream.remoteClosed = endStream;
    this.onStream(stream, fields);
    if (endStream && !stream.localClosed) stream.onEnd();
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.ProtocolError, "DATA on stream 0");
    // Flow control counts the whole payload, padding included.
    this.connectionUnacknowledged += payload.length;
    const data = (flags & Flag.Padded) !== 0 ? unpad(payload) : payload;
    const stream = this.streams.get(streamId);
    if (stream === undefined || stream.remoteClosed) {
      if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.ProtocolError, "DATA on an idle stream");
      // A stream this side already finished (or reset): its late data is dropped.
      return;
    }
    const endStream = (flags & Flag.EndStream) !== 0;
    if (endStream) stream.remoteClosed = true;
    if (data.length > 0) {
      stream.unacknowledged += payload.length;
      stream.onData(data);
    }
    if (endStream) {
      if (!stream.localClosed) stream.onEnd();
      return;
    }
    if (stream.unacknowledged >= STREAM_WINDOW / 4 && !stream.paused) this.acknowledge(stream);
  }

  /** @internal Grants the stream's consumed bytes back to the client (unless it ended or is paused). */
  acknowledge(stream: Http2ServerStream): void {
    if (stream.paused || stream.remoteClosed || stream.unacknowledged === 0) return;
    this.writeFrame(windowUpdateFrame(stream.id, stream.unacknowledged));
    stream.unacknowledged = 0;
  }

  /** @internal */
  writeHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    // Blocks we send are small (status and content type; trailers with a message), well under any frame size.
    const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + block.length);
    writeFrameHeader(out, 0, block.length, FrameType.Headers, Flag.EndHeaders | (endStream ? Flag.EndStream : 0), streamId);
    block.copy(out, FRAME_HEADER_BYTES);
    this.push(out);
  }

  /** @internal */
  writeData(stream: Http2ServerStream, prefix: Buffer, body: Uint8Array): boolean {
    const total = prefix.length + body.length;
    if (stream.pendingBytes === 0 && total <= stream.sendWindow && total <= this.connectionSendWindow && total <= this.peerMaxFrameSize) {
      // The common case: one frame, sent now.
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES + prefix.length);
      writeFrameHeader(header, 0, total, FrameType.Data, 0, stream.id);
      prefix.copy(header, FRAME_HEADER_BYTES);
      stream.sendWindow -= total;
      this.connectionSendWindow -= total;
      this.push(header);
      if (body.length > 0) this.push(body);
      return this.writable(stream);
    }
    if (prefix.length > 0) stream.pending.push(prefix);
    if (body.length > 0) stream.pending.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    stream.pendingBytes += total;
    this.sendPending(stream);
    return this.writable(stream);
  }

  private writable(stream: Http2ServerStream): boolean {
    if (stream.pendingBytes < STREAM_HIGH_WATER && this.outputBytes + this.socket.writableLength < SOCKET_HIGH_WATER) return true;
    stream.wantsDrain = true;
    return false;
  }

  /** Sends as much of the stream's waiting data as the windows allow, then its trailers if all data left. */
  private sendPending(stream: Http2ServerStream): void {
    while (stream.pendingBytes > 0) {
      const budget = Math.min(stream.sendWindow, this.connectionSendWindow, this.peerMaxFrameSize);
      if (budget <= 0) {
        if (this.connectionSendWindow <= 0) this.blocked.add(stream);
        return;
      }
      const size = Math.min(budget, stream.pendingBytes);
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      writeFrameHeader(header, 0, size, FrameType.Data, 0, stream.id);
      this.push(header);
      let left = size;
      while (left > 0) {
        const head = stream.pending[0]!;
        if (head.length <= left) {
          this.push(head);
          left -= head.length;
          stream.pending.shift();
        } else {
          this.push(head.subarray(0, left));
          stream.pending[0] = head.subarray(left);
          left = 0;
        }
      }
      stream.pendingBytes -= size;
      stream.sendWindow -= size;
      this.connectionSendWindow -= size;
    }
    const trailers = stream.pendingTrailers;
    if (trailers !== undefined) {
      stream.pendingTrailers = undefined;
      this.writeHeaderBlock(stream.id, trailers, true);
      stream.closeLocal();
      return;
    }
    if (stream.wantsDrain) this.drainWriter(stream);
  }

  private drainWriter(stream: Http2ServerStream): void {
    if (stream.pendingBytes >= STREAM_HIGH_WATER || this.outputBytes + this.socket.writableLength >= SOCKET_HIGH_WATER) return;
    stream.wantsDrain = false;
    stream.onDrain();
  }

  private drainWriters(): void {
    for (const stream of this.streams.values()) if (stream.wantsDrain) this.drainWriter(stream);
  }

  /** @internal */
  writeFrame(bytes: Buffer): void {
    this.push(bytes);
  }

  private push(bytes: Uint8Array): void {
    if (this.closed) return;
    this.output.push(bytes as Buffer);
    this.outputBytes += bytes.length;
    if (this.output.length === 1) scheduleFlush(this);
  }

  /** Writes everything queued in this turn to the socket. */
  flush(): void {
    const output = this.output;
    if (output.length === 0 || this.closed) return;
    const socket = this.socket;
    if (this.outputBytes <= COALESCE_LIMIT) {
      socket.write(output.length === 1 ? output[0]! : Buffer.concat(output, this.outputBytes));
    } else {
      socket.cork();
      for (const chunk of output) socket.write(chunk);
      socket.uncork();
    }
    output.length = 0;
    this.outputBytes = 0;
    // Writers waiting only on this connection's own buffer can go on once it left for the socket.
    if (socket.writableLength < SOCKET_HIGH_WATER) this.drainWriters();
  }

  /** @internal The stream is closed on both sides (or reset): it no longer counts as open. */
  forget(stream: Http2ServerStream): void {
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
  }

  private resetStream(stream: Http2ServerStream, code: ErrorCode): void {
    stream.reset(code);
    stream.onAbort();
  }

  private fail(code: ErrorCode, message: string): void {
    if (this.closed) return;
    this.writeFrame(goawayFrame(this.lastStreamId, code, message));
    this.flush();
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.abortAll();
  }

  private abortAll(): void {
    this.closed = true;
    dirtyConnections.delete(this);
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const stream of streams) {
      if (stream.localClosed) continue;
      stream.localClosed = true;
      stream.onAbort();
    }
  }
}

const EMPTY_BUFFER = Buffer.alloc(0);

class ConnectionError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The payload of a PADDED frame without its pad length byte and padding. */
function unpad(payload: Buffer): Buffer {
  if (payload.length < 1) throw new ConnectionError(ErrorCode.ProtocolError, "padding");
  const padding = payload[0]!;
  if (padding >= payload.length) throw new ConnectionError(ErrorCode.ProtocolError, "padding longer than the frame");
  return payload.subarray(1, payload.length - padding);
}

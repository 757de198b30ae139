/**
 * The RFC 6455 pieces the gateway's websocket mode needs (etcd wraps its gateway in
 * tmc/grpc-websocket-proxy, gorilla/websocket underneath): the handshake key, a parser for the masked frames
 * a client sends (fragmented messages reassembled, control frames passed through) and the unmasked frames a
 * server sends.
 */
import { createHash } from "node:crypto";
import { GatewayError } from "./errors.js";

const HANDSHAKE_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash("sha1")
    .update(key + HANDSHAKE_GUID)
    .digest("base64");
}

/** One complete message (data frames joined) or control frame. */
export interface WebSocketMessage {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Close code for a message over the read limit (RFC 6455 7.4.1), as gorilla sends for its ErrReadLimit. */
export const CLOSE_MESSAGE_TOO_BIG = 1009;

/**
 * Incremental parser for client-to-server frames. Bytes are held as received until a whole frame is in, so a
 * large frame costs one copy; a frame or message longer than `maxMessageBytes` is refused from its header,
 * before its payload is buffered.
 */
export class WebSocketFrameParser {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Bytes needed before the next frame can be looked at again. */
  private needed = 2;
  private fragments: Buffer[] = [];
  private fragmentsLength = 0;
  private fragmentOpcode = 0;

  constructor(private readonly maxMessageBytes = Number.MAX_SAFE_INTEGER) {}

  /**
   * Feeds bytes; returns the messages completed by them. Throws GatewayError `WebSocketProtocol` for frames
   * a server must reject (unmasked, fragmented control frame, bad continuation, too big).
   */
  push(chunk: Buffer): WebSocketMessage[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const messages: WebSocketMessage[] = [];
    while (this.length >= this.needed) {
      const buffer = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
      const frame = this.nextFrame(buffer);
      if (typeof frame === "number") {
        this.chunks = [buffer];
        this.needed = frame;
        continue;
      }
      const rest = buffer.subarray(frame.size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.length = rest.length;
      this.needed = 2;
      const { fin, opcode, payload } = frame;
      if (opcode >= 8) {
        if (!fin || payload.length > 125) throw new GatewayError("WebSocketProtocol", "bad control frame");
        messages.push({ opcode, payload });
        continue;
      }
      if (opcode === Opcode.continuation) {
        if (this.fragments.length === 0) throw new GatewayError("WebSocketProtocol", "continuation without a start");
      } else {
        if (this.fragments.length > 0) throw new GatewayError("WebSocketProtocol", "new message inside a fragmented one");
        this.fragmentOpcode = opcode;
      }
      this.fragments.push(payload);
      this.fragmentsLength += payload.length;
      if (fin) {
        messages.push({ opcode: this.fragmentOpcode, payload: Buffer.concat(this.fragments) });
        this.fragments = [];
        this.fragmentsLength = 0;
      }
    }
    return messages;
  }

  /** The frame at the start of `b` and its size on the wire, or how many bytes it needs. */
  private nextFrame(b: Buffer): { fin: boolean; opcode: number; payload: Buffer; size: number } | number {
    if (b.length < 2) return 2;
    const fin = (b[0]! & 0x80) !== 0;
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    if (!masked) throw new GatewayError("WebSocketProtocol", "client frames must be masked");
    let length = b[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return 4;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return 10;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new GatewayError("WebSocketProtocol", "frame too large", { closeCode: CLOSE_MESSAGE_TOO_BIG });
      }
      length = Number(big);
      offset = 10;
    }
    if (opcode < 8 && this.fragmentsLength + length > this.maxMessageBytes) {
      throw new GatewayError("WebSocketProtocol", "message too big", { closeCode: CLOSE_MESSAGE_TOO_BIG });
    }
    const size = offset + 4 + length;
    if (b.length < size) return size;
    const mask = b.subarray(offset, offset + 4);
    const payload = Buffer.from(b.subarray(offset + 4, size));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
    return { fin, opcode, payload, size };
  }
}

/** A single unmasked server frame. */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, payload.length]);
  } else if (payload.length < 0x10000) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}

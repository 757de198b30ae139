import { Duplex } from "node:stream";
import type { Socket } from "node:net";

/**
 * etcd's clients (grpc-go, as etcdctl 3.4 dials `http://host:port` endpoints through the `passthrough`
 * resolver) send `:authority: http://127.0.0.1:2379`. Go's HTTP/2 server accepts that; nghttp2, under
 * Node's HTTP/2, resets the stream with PROTOCOL_ERROR, so every `etcdctl --endpoints=http://…` and every
 * `--cluster` command (which dials the members' advertised client URLs) would fail.
 *
 * `AuthorityRewriter` sits between the client socket and Node's HTTP/2 session: it re-encodes every
 * header block the client sends (HPACK, RFC 7541) with a scheme prefix stripped from `:authority`.
 * Every field is re-encoded as a literal without indexing, so Node's decoder table stays empty and never
 * disagrees with the client's encoder, whose table this class mirrors to decode. All other frames pass
 * through untouched; the server → client direction is not touched at all.
 */

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const FRAME_HEADER_LENGTH = 9;
const FRAME_HEADERS = 0x1;
const FRAME_CONTINUATION = 0x9;
const FRAME_SETTINGS = 0x4;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which Node advertises: re-encoded blocks are split to it. */
const MAX_FRAME_PAYLOAD = 16384;
/** Node advertises the default SETTINGS_HEADER_TABLE_SIZE: the client's encoder table starts at it. */
const DEFAULT_HEADER_TABLE_SIZE = 4096;

const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** RFC 7541 Appendix B: per symbol 0–255, its code and bit length (EOS is 0x3fffffff, 30 bits). */
const HUFFMAN_CODES: readonly number[] = [
  0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28, 0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28, 0xfffffe8, 28,
  0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28, 0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28, 0xfffffed, 28, 0xfffffee, 28,
  0xfffffef, 28, 0xffffff0, 28, 0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28, 0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28,
  0xffffff7, 28, 0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28, 0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12, 0x1ff9, 13, 0x15, 6,
  0xf8, 8, 0x7fa, 11, 0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11, 0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6, 0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6, 0x1a,
  6, 0x1b, 6, 0x1c, 6, 0x1d, 6, 0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8, 0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10, 0x1ffa, 13, 0x21, 6, 0x5d, 7,
  0x5e, 7, 0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7, 0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7, 0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7, 0x6b, 7, 0x6c, 7,
  0x6d, 7, 0x6e, 7, 0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7, 0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13, 0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6,
  0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5, 0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6, 0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7, 0x28, 6, 0x29, 6, 0x2a, 6, 0x7,
  5, 0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5, 0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7, 0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15, 0x7fc, 11, 0x3ffd, 14,
  0x1ffd, 13, 0xffffffc, 28, 0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20, 0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23,
  0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23, 0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23, 0xffffec, 24, 0xffffed,
  24, 0x3fffd7, 22, 0x7fffe0, 23, 0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23, 0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22,
  0x7fffe5, 23, 0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24, 0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22, 0x3fffdc, 22,
  0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21, 0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24, 0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb,
  23, 0x7fffec, 23, 0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21, 0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23, 0xfffea,
  20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22, 0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23, 0x3ffffe0, 26, 0x3ffffe1, 26,
  0xfffeb, 20, 0x7fff1, 19, 0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25, 0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde,
  27, 0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25, 0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27, 0x7ffffe1, 27,
  0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24, 0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26, 0xffffffd, 28, 0x7ffffe3, 27,
  0x7ffffe4, 27, 0x7ffffe5, 27, 0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21, 0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3,
  23, 0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25, 0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23, 0x3ffffeb, 26,
  0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26, 0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27, 0x7ffffeb, 27, 0xffffffe, 28,
  0x7ffffec, 27, 0x7ffffed, 27, 0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26,
];

interface HuffmanNode {
  symbol?: number;
  children: [HuffmanNode | undefined, HuffmanNode | undefined];
}

let huffmanRoot: HuffmanNode | undefined;

function huffmanTree(): HuffmanNode {
  if (huffmanRoot !== undefined) return huffmanRoot;
  const root: HuffmanNode = { children: [undefined, undefined] };
  for (let symbol = 0; symbol < 256; symbol++) {
    const code = HUFFMAN_CODES[2 * symbol]!;
    const length = HUFFMAN_CODES[2 * symbol + 1]!;
    let node = root;
    for (let bit = length - 1; bit >= 0; bit--) {
      const b = (code >>> bit) & 1;
      node = node.children[b] ??= { children: [undefined, undefined] };
    }
    node.symbol = symbol;
  }
  return (huffmanRoot = root);
}

export class HpackError extends Error {
  override readonly name = "HpackError";
}

function huffmanDecode(bytes: Uint8Array): Buffer {
  const root = huffmanTree();
  const out: number[] = [];
  let node = root;
  let depth = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const next = node.children[(byte >>> bit) & 1];
      if (next === undefined) throw new HpackError("invalid Huffman code");
      depth++;
      if (next.symbol !== undefined) {
        out.push(next.symbol);
        node = root;
        depth = 0;
      } else {
        node = next;
      }
    }
  }
  // Padding is the most significant bits of EOS (all ones), shorter than 8 bits.
  if (depth > 7) throw new HpackError("invalid Huffman padding");
  return Buffer.from(out);
}

/** An HPACK decoder mirroring one peer's encoder (its dynamic table). Names and values are latin1 strings. */
export class HpackDecoder {
  private table: [string, string][] = [];
  private size = 0;
  private maxSize = DEFAULT_HEADER_TABLE_SIZE;

  decode(block: Uint8Array): [string, string][] {
    const fields: [string, string][] = [];
    let pos = 0;
    const integer = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++]! & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError("truncated integer");
        const b = block[pos++]!;
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) return value;
        if (shift > 28) throw new HpackError("integer too large");
      }
    };
    const string = (): string => {
      if (pos >= block.length) throw new HpackError("truncated string");
      const huffman = (block[pos]! & 0x80) !== 0;
      const length = integer(7);
      if (pos + length > block.length) throw new HpackError("truncated string");
      const raw = block.subarray(pos, pos + length);
      pos += length;
      return (huffman ? huffmanDecode(raw) : Buffer.from(raw)).toString("latin1");
    };
    const entry = (index: number): readonly [string, string] => {
      if (index === 0) throw new HpackError("index 0");
      if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
      const dynamic = this.table[index - STATIC_TABLE.length - 1];
      if (dynamic === undefined) throw new HpackError(`index ${index} out of range`);
      return dynamic;
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if ((b & 0x80) !== 0) {
        const [name, value] = entry(integer(7));
        fields.push([name, value]);
      } else if ((b & 0xc0) === 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : entry(index)[0];
        const value = string();
        fields.push([name, value]);
        this.insert(name, value);
      } else if ((b & 0xe0) === 0x20) {
        this.maxSize = integer(5);
        this.evict();
      } else {
        const index = integer(4);
        const name = index === 0 ? string() : entry(index)[0];
        fields.push([name, string()]);
      }
    }
    return fields;
  }

  private insert(name: string, value: string): void {
    this.table.unshift([name, value]);
    this.size += name.length + value.length + 32;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize && this.table.length > 0) {
      const [name, value] = this.table.pop()!;
      this.size -= name.length + value.length + 32;
    }
  }
}

/** Encodes fields as literals without indexing, new names, no Huffman: no encoder state at all. */
export function encodeLiteralBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  const integer = (value: number, prefixBits: number, firstByteFlags: number): void => {
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      parts.push(Buffer.from([firstByteFlags | value]));
      return;
    }
    const bytes = [firstByteFlags | mask];
    value -= mask;
    while (value >= 128) {
      bytes.push((value % 128) | 0x80);
      value = Math.floor(value / 128);
    }
    bytes.push(value);
    parts.push(Buffer.from(bytes));
  };
  const string = (text: string): void => {
    const bytes = Buffer.from(text, "latin1");
    integer(bytes.length, 7, 0);
    parts.push(bytes);
  };
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0]));
    string(name);
    string(value);
  }
  return Buffer.concat(parts);
}

/** `http://host:port` → `host:port`; anything else unchanged. */
export function normalizeAuthority(authority: string): string {
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/]*)/.exec(authority);
  return match === null ? authority : match[1]!;
}

/** Rewrites the client → server byte stream of one HTTP/2 connection (see the file comment). */
export class AuthorityRewriter {
  private pending: Buffer = Buffer.alloc(0);
  private prefaceLeft: number;
  /** Drop the client's first SETTINGS ACK (it acknowledges the listener's early SETTINGS, not Node's). */
  private dropSettingsAck: boolean;

  constructor(options: { prefaceSeen?: boolean; dropFirstSettingsAck?: boolean } = {}) {
    this.prefaceLeft = options.prefaceSeen === true ? 0 : PREFACE_LENGTH;
    this.dropSettingsAck = options.dropFirstSettingsAck === true;
  }
  private readonly decoder = new HpackDecoder();
  private block: Buffer[] = [];
  private blockStream = 0;
  private blockFlags = 0;

  /** Feeds bytes from the client; returns the bytes to hand to the server. */
  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, data.length);
      out.push(data.subarray(0, n));
      this.prefaceLeft -= n;
      data = data.subarray(n);
    }
    let pos = 0;
    while (data.length - pos >= FRAME_HEADER_LENGTH) {
      const length = data.readUIntBE(pos, 3);
      if (data.length - pos < FRAME_HEADER_LENGTH + length) break;
      const type = data[pos + 3]!;
      const flags = data[pos + 4]!;
      const stream = data.readUInt32BE(pos + 5) & 0x7fffffff;
      const frame = data.subarray(pos, pos + FRAME_HEADER_LENGTH + length);
      const payload = frame.subarray(FRAME_HEADER_LENGTH);
      pos += FRAME_HEADER_LENGTH + length;
      if (type === FRAME_HEADERS) {
        let fragment = payload;
        if ((flags & FLAG_PADDED) !== 0) fragment = fragment.subarray(1, fragment.length - fragment[0]!);
        if ((flags & FLAG_PRIORITY) !== 0) fragment = fragment.subarray(5);
        this.block = [fragment];
        this.blockStream = stream;
        this.blockFlags = flags & FLAG_END_STREAM;
        if ((flags & FLAG_END_HEADERS) !== 0) out.push(this.flushBlock());
      } else if (type === FRAME_SETTINGS && (flags & FLAG_ACK) !== 0 && this.dropSettingsAck) {
        this.dropSettingsAck = false;
      } else if (type === FRAME_CONTINUATION && this.block.length > 0) {
        this.block.push(payload);
        if ((flags & FLAG_END_HEADERS) !== 0) out.push(this.flushBlock());
      } else {
        out.push(frame);
      }
    }
    this.pending = pos === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(pos));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  private flushBlock(): Buffer {
    const fields = this.decoder
      .decode(Buffer.concat(this.block))
      .map(([name, value]): [string, string] => (name === ":authority" ? [name, normalizeAuthority(value)] : [name, value]));
    this.block = [];
    const encoded = encodeLiteralBlock(fields);
    const frames: Buffer[] = [];
    for (let offset = 0, first = true; first || offset < encoded.length; first = false) {
      const piece = encoded.subarray(offset, offset + MAX_FRAME_PAYLOAD);
      offset += piece.length;
      const last = offset >= encoded.length;
      const header = Buffer.alloc(FRAME_HEADER_LENGTH);
      header.writeUIntBE(piece.length, 0, 3);
      header[3] = first ? FRAME_HEADERS : FRAME_CONTINUATION;
      header[4] = (first ? this.blockFlags : 0) | (last ? FLAG_END_HEADERS : 0);
      header.writeUInt32BE(this.blockStream, 5);
      frames.push(header, piece);
    }
    return Buffer.concat(frames);
  }
}

/**
 * Wraps an HTTP/2 client socket so that what Node's HTTP/2 session reads is the client's stream with
 * header blocks normalized; writes go to the socket unchanged. A malformed header block closes the
 * connection (the server would have closed it too).
 */
export function normalizeAuthorityStream(socket: Socket, initial?: { bytes: Buffer; dropFirstSettingsAck: boolean }): Duplex {
  const rewriter = new AuthorityRewriter({ dropFirstSettingsAck: initial?.dropFirstSettingsAck ?? false });
  const wrapped = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, (error) => callback(error ?? null));
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy();
      callback(error);
    },
  });
  socket.on("data", (chunk: Buffer) => {
    let out: Buffer;
    try {
      out = rewriter.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    if (out.length > 0 && !wrapped.push(out)) socket.pause();
  });
  if (initial !== undefined) {
    try {
      const out = rewriter.push(initial.bytes);
      if (out.length > 0) wrapped.push(out);
    } catch {
      socket.destroy();
    }
  }
  socket.on("end", () => wrapped.push(null));
  socket.on("close", () => wrapped.destroy());
  socket.on("error", (error) => wrapped.destroy(error));
  return wrapped;
}

/**
 * The listener's early SETTINGS frame (empty: all defaults). Sent as soon as a client's HTTP/2 preface
 * arrives, so that a client which waits for the server's SETTINGS before its first request (grpc-go,
 * which etcdctl uses) sends that request, and the listener can see its `:authority` before choosing the
 * connection's path. HTTP/2 allows a peer several SETTINGS frames; the client's ACK of this one is removed
 * before Node's session sees the stream.
 */
export const EARLY_SERVER_SETTINGS = Buffer.from([0, 0, 0, FRAME_SETTINGS, 0, 0, 0, 0, 0]);

export interface EarlyClientStream {
  /** The client's bytes so far, with the ACK of `EARLY_SERVER_SETTINGS` removed. */
  readonly bytes: Buffer;
  /** Whether the first request's `:authority` carries a scheme (the connection needs the rewriter). */
  readonly authorityHasScheme: boolean;
}

/**
 * Reads the start of a client's HTTP/2 byte stream (preface included) after `EARLY_SERVER_SETTINGS` was
 * sent. Undefined until both the client's ACK of it and its first complete header block have arrived.
 * A client whose first request is clean (grpc-js, or Go dialing `host:port`) then gets Node's native
 * HTTP/2 path for the whole connection; one that sends `http://host:port` goes through the rewriter.
 */
export function inspectEarlyClientStream(data: Buffer): EarlyClientStream | undefined {
  if (data.length < PREFACE_LENGTH) return undefined;
  let pos = PREFACE_LENGTH;
  let ackAt = -1;
  let authority: string | undefined;
  let block: Buffer[] = [];
  while (data.length - pos >= FRAME_HEADER_LENGTH && (ackAt < 0 || authority === undefined)) {
    const length = data.readUIntBE(pos, 3);
    if (data.length - pos < FRAME_HEADER_LENGTH + length) break;
    const type = data[pos + 3]!;
    const flags = data[pos + 4]!;
    const payload = data.subarray(pos + FRAME_HEADER_LENGTH, pos + FRAME_HEADER_LENGTH + length);
    if (type === FRAME_SETTINGS && (flags & FLAG_ACK) !== 0 && ackAt < 0) {
      ackAt = pos;
    } else if (authority === undefined && (type === FRAME_HEADERS || (type === FRAME_CONTINUATION && block.length > 0))) {
      let fragment = payload;
      if (type === FRAME_HEADERS) {
        if ((flags & FLAG_PADDED) !== 0) fragment = fragment.subarray(1, fragment.length - fragment[0]!);
        if ((flags & FLAG_PRIORITY) !== 0) fragment = fragment.subarray(5);
        block = [];
      }
      block.push(fragment);
      if ((flags & FLAG_END_HEADERS) !== 0) {
        const fields = new HpackDecoder().decode(Buffer.concat(block));
        authority = fields.find(([name]) => name === ":authority")?.[1] ?? "";
      }
    }
    pos += FRAME_HEADER_LENGTH + length;
  }
  if (ackAt < 0 || authority === undefined) return undefined;
  const bytes = Buffer.concat([data.subarray(0, ackAt), data.subarray(ackAt + FRAME_HEADER_LENGTH)]);
  return { bytes, authorityHasScheme: normalizeAuthority(authority) !== authority };
}

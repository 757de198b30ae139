/**
 * HPACK (RFC 7541) decoding for the HTTP/2 transport: turns the header blocks one connection's peer sends
 * into name/value lists. One decoder per connection, since the dynamic table carries over between blocks.
 *
 * Names and values are latin1 strings, one character per octet: HTTP/2 field octets are not UTF-8 text, and
 * latin1 makes a string's length its octet count, which the table and list sizes are measured in.
 */

export class HpackError extends Error {
  override name = "HpackError";
}

/** RFC 7541 Appendix A; index 0 is unused so that an HPACK index is the array index. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ["", ""],
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
const STATIC_COUNT = STATIC_TABLE.length - 1;
const STATIC_NAMES = STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES = STATIC_TABLE.map((e) => e[1]);

/** RFC 7541 Appendix B: the code of each octet, right-aligned in its bit length (HUFFMAN_LENGTHS). */
const HUFFMAN_CODES: readonly number[] = [
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, 0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea,
  0x3ffffffd, 0xfffffeb, 0xfffffec, 0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, 0xffffff4,
  0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, 0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa, 0x3fa,
  0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18, 0x00, 0x01, 0x02, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb,
  0x3fc, 0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
  0x70, 0x71, 0x72, 0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22, 0x7ffd, 0x03, 0x23, 0x04, 0x24, 0x05, 0x25, 0x26, 0x27, 0x06,
  0x74, 0x75, 0x28, 0x29, 0x2a, 0x07, 0x2b, 0x76, 0x2c, 0x08, 0x09, 0x2d, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd,
  0xffffffc, 0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9, 0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd,
  0x7fffde, 0xffffeb, 0x7fffdf, 0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3, 0x7fffe4, 0x1fffdc,
  0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, 0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec, 0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed,
  0x3fffe1, 0x7fffee, 0x7fffef, 0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1, 0x3ffffe0, 0x3ffffe1,
  0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec, 0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1,
  0x1ffffed, 0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2, 0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9,
  0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5, 0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3, 0x3fffea,
  0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4, 0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8,
  0x7ffffe9, 0x7ffffea, 0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
];
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10,
  12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7,
  7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22,
  23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22,
  23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20,
  24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
];
/** EOS (symbol 256) is thirty one-bits; no octet's code may decode to it. */
const EOS_CODE = 0x3fffffff;
const EOS_LENGTH = 30;

/*
 * Huffman decoding runs on nibbles, one table lookup per 4 bits. A state is an internal node of the code tree
 * (the bits read since the last complete symbol); the complete code (Kraft sum 1 with EOS) has 257 leaves,
 * so exactly 256 internal nodes, and a state fits in 8 bits. For each state and nibble the table holds the
 * state after the nibble's 4 bits and the symbol they complete, if any: at most one, as the shortest code is
 * 5 bits. Entry layout: bits 0-7 next state, 8-15 symbol, 16 symbol completed, 17 EOS completed.
 * Nibbles rather than octets keep the table at 16 KiB (cache-resident) and its construction at module load
 * to 16K bit steps instead of half a million, for one more lookup per octet.
 */
const HUFFMAN_SYMBOL = 1 << 16;
const HUFFMAN_EOS = 1 << 17;
const { HUFFMAN_TABLE, HUFFMAN_ACCEPTS } = buildHuffmanTable();

function buildHuffmanTable(): { HUFFMAN_TABLE: Int32Array; HUFFMAN_ACCEPTS: Uint8Array } {
  // children[2 * node + bit]: an internal node's id (> 0), or a leaf as -(symbol + 1); 0 = not yet built.
  const children = new Int32Array(2 * 256);
  let nodes = 1; // node 0 is the root
  const insert = (code: number, length: number, symbol: number): void => {
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (children[slot] === 0) children[slot] = nodes++;
      node = children[slot]!;
    }
    children[2 * node + (code & 1)] = -(symbol + 1);
  };
  for (let symbol = 0; symbol < 256; symbol++) insert(HUFFMAN_CODES[symbol]!, HUFFMAN_LENGTHS[symbol]!, symbol);
  insert(EOS_CODE, EOS_LENGTH, 256);

  const table = new Int32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[2 * node + ((nibble >>> bit) & 1)]!;
        if (child > 0) {
          node = child;
          continue;
        }
        const symbol = -child - 1;
        entry = symbol === 256 ? HUFFMAN_EOS : HUFFMAN_SYMBOL | (symbol << 8);
        node = 0;
      }
      table[(state << 4) | nibble] = entry | node;
    }
  }

  // A string may end only on a symbol boundary or inside padding: a prefix of EOS's one-bits at most 7 long.
  const accepts = new Uint8Array(256);
  for (let node = 0, depth = 0; depth <= 7; depth++, node = children[2 * node + 1]!) accepts[node] = 1;
  return { HUFFMAN_TABLE: table, HUFFMAN_ACCEPTS: accepts };
}

/**
 * Integers above this are rejected: no index, length or table size of a real peer comes near it, and it
 * keeps every decoded integer exact and a small integer for the engine.
 */
const MAX_INTEGER = 0x7fffffff;
/** An HPACK entry's size: its octets plus an estimated 32 octets of overhead (RFC 7541 section 4.1). */
const ENTRY_OVERHEAD = 32;
const DEFAULT_TABLE_SIZE = 4096;

/** Decodes header blocks of one HTTP/2 connection (the dynamic table lives across blocks). */
export class HpackDecoder {
  /** The advertised SETTINGS_HEADER_TABLE_SIZE: the most a size update may set. */
  private readonly maxTableSize: number;
  /** The table's current size limit, as the peer's last size update set it. */
  private capacity: number;
  /** Sum of the entries' sizes. */
  private size = 0;
  /**
   * The dynamic table as a ring: `head` is where the next entry goes, the newest entry (HPACK index 62)
   * sits just before it, and `count` entries back from there the oldest, which eviction drops first.
   * The ring's length is a power of two so that positions wrap with a mask.
   */
  private names: string[] = new Array<string>(16).fill("");
  private values: string[] = new Array<string>(16).fill("");
  private mask = 15;
  private head = 0;
  private count = 0;
  /** Read position in the block being decoded. */
  private pos = 0;
  /** Output of Huffman decoding, reused across strings and grown as longer ones come. */
  private scratch = Buffer.allocUnsafe(256);

  /** maxTableSize: the SETTINGS_HEADER_TABLE_SIZE we advertise (default 4096); a dynamic table size update above it is an error. */
  constructor(maxTableSize = DEFAULT_TABLE_SIZE) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > MAX_INTEGER) {
      throw new RangeError(`maxTableSize must be an integer in [0, ${String(MAX_INTEGER)}], got ${String(maxTableSize)}`);
    }
    this.maxTableSize = maxTableSize;
    this.capacity = maxTableSize;
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATION payloads already joined). Returns names and
   * values alternating: [name0, value0, name1, value1, ...]. Throws HpackError on any malformed input; the
   * dynamic table is then out of step with the peer's, so the caller must end the connection
   * (COMPRESSION_ERROR). maxListSize bounds the sum of (name.length + value.length + 32) over the list
   * (default: unbounded); exceeding it throws HpackError as soon as the field that crosses it is decoded.
   */
  decode(block: Uint8Array, maxListSize = Infinity): string[] {
    const fields: string[] = [];
    const end = block.length;
    let listSize = 0;
    this.pos = 0;
    // Size updates are allowed only before the block's first field (RFC 7541 section 4.2).
    while (this.pos < end && (block[this.pos]! & 0xe0) === 0x20) {
      const size = this.readInteger(block, 5);
      if (size > this.maxTableSize) {
        throw new HpackError(`dynamic table size update to ${String(size)} exceeds the advertised ${String(this.maxTableSize)}`);
      }
      this.capacity = size;
      this.evictTo(size);
    }
    while (this.pos < end) {
      const first = block[this.pos]!;
      let name: string;
      let value: string;
      if (first & 0x80) {
        // Indexed field. The one-octet form (index < 127) is the hot path: read it without readInteger.
        let index = first & 0x7f;
        if (index === 0x7f) index = this.readInteger(block, 7);
        else this.pos++;
        if (index === 0) throw new HpackError("indexed field with index 0");
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const at = this.dynamicPosition(index);
          name = this.names[at]!;
          value = this.values[at]!;
        }
      } else if (first & 0x40) {
        // Literal with incremental indexing.
        const index = this.readInteger(block, 6);
        name = index === 0 ? this.readString(block) : this.nameAt(index);
        value = this.readString(block);
        this.add(name, value);
      } else if (first & 0x20) {
        throw new HpackError("dynamic table size update after a header field");
      } else {
        // Literal without indexing (0000) or never indexed (0001): the same for a decoder that forwards no
        // fields to another hop.
        const index = this.readInteger(block, 4);
        name = index === 0 ? this.readString(block) : this.nameAt(index);
        value = this.readString(block);
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) {
        throw new HpackError(`header list size exceeds ${String(maxListSize)}`);
      }
      fields.push(name, value);
    }
    return fields;
  }

  /** Reads an integer with an N-bit prefix (RFC 7541 section 5.1) at `pos`, and moves past it. */
  private readInteger(block: Uint8Array, prefixBits: number): number {
    const end = block.length;
    let pos = this.pos;
    const limit = (1 << prefixBits) - 1;
    let value = block[pos++]! & limit;
    if (value === limit) {
      let shift = 0;
      let octet: number;
      do {
        if (pos >= end) throw new HpackError("truncated integer");
        octet = block[pos++]!;
        // Multiplication rather than a shift: at 28 bits and more a shift would wrap in 32-bit arithmetic.
        value += (octet & 0x7f) * 2 ** shift;
        shift += 7;
        if (value > MAX_INTEGER) throw new HpackError("integer overflow");
        // Five continuation octets carry any integer up to MAX_INTEGER; more can only be zero padding, which
        // would let one integer run as long as the block.
        if (shift > 35) throw new HpackError("integer overflow: too many continuation octets");
      } while (octet & 0x80);
    }
    this.pos = pos;
    return value;
  }

  /** Reads a string literal (RFC 7541 section 5.2) at `pos`, and moves past it. */
  private readString(block: Uint8Array): string {
    if (this.pos >= block.length) throw new HpackError("truncated header block: string literal expected");
    const huffman = (block[this.pos]! & 0x80) !== 0;
    const length = this.readInteger(block, 7);
    const start = this.pos;
    const end = start + length;
    if (end > block.length) throw new HpackError("truncated string literal");
    this.pos = end;
    return huffman ? this.huffmanDecode(block, start, end) : latin1(block, start, end);
  }

  private huffmanDecode(block: Uint8Array, start: number, end: number): string {
    // Every symbol takes at least 5 bits.
    const most = Math.floor(((end - start) * 8) / 5);
    if (this.scratch.length < most) this.scratch = Buffer.allocUnsafe(Math.max(most, 2 * this.scratch.length));
    const out = this.scratch;
    // A local, so that the loop does not load the module binding (and check it is initialised) per lookup.
    const table = HUFFMAN_TABLE;
    let n = 0;
    let state = 0;
    for (let i = start; i < end; i++) {
      const octet = block[i]!;
      const high = table[(state << 4) | (octet >>> 4)]!;
      if (high & HUFFMAN_SYMBOL) out[n++] = (high >>> 8) & 0xff;
      const low = table[((high & 0xff) << 4) | (octet & 0xf)]!;
      if (low & HUFFMAN_SYMBOL) out[n++] = (low >>> 8) & 0xff;
      if ((high | low) & HUFFMAN_EOS) throw new HpackError("EOS in Huffman-coded string");
      state = low & 0xff;
    }
    if (!HUFFMAN_ACCEPTS[state]) throw new HpackError("invalid Huffman padding");
    return latin1(out, 0, n);
  }

  /** The name of the entry at an HPACK index (static or dynamic). */
  private nameAt(index: number): string {
    return index <= STATIC_COUNT ? STATIC_NAMES[index]! : this.names[this.dynamicPosition(index)]!;
  }

  /** The ring position of the dynamic entry at an HPACK index above the static table's. */
  private dynamicPosition(index: number): number {
    const age = index - STATIC_COUNT - 1;
    if (age >= this.count) throw new HpackError(`index ${String(index)} is past the end of the table`);
    return (this.head - 1 - age) & this.mask;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.capacity) {
      // An entry larger than the table empties it and is not added (RFC 7541 section 4.4).
      this.evictTo(0);
      return;
    }
    this.evictTo(this.capacity - size);
    if (this.count === this.names.length) this.grow();
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.head = (this.head + 1) & this.mask;
    this.count++;
    this.size += size;
  }

  /** Drops the oldest entries until the table's size is at most `limit`. */
  private evictTo(limit: number): void {
    while (this.size > limit) {
      const oldest = (this.head - this.count) & this.mask;
      this.size -= this.names[oldest]!.length + this.values[oldest]!.length + ENTRY_OVERHEAD;
      // Let go of the strings: a large value must not stay reachable from a slot out of use.
      this.names[oldest] = "";
      this.values[oldest] = "";
      this.count--;
    }
  }

  /** Doubles the ring, laying its entries out again from position 0, oldest first. */
  private grow(): void {
    const length = 2 * this.names.length;
    const names = new Array<string>(length).fill("");
    const values = new Array<string>(length).fill("");
    for (let i = 0; i < this.count; i++) {
      const from = (this.head - this.count + i) & this.mask;
      names[i] = this.names[from]!;
      values[i] = this.values[from]!;
    }
    this.names = names;
    this.values = values;
    this.mask = length - 1;
    this.head = this.count;
  }
}

/**
 * Octets [start, end) as latin1. Buffer's own latin1Slice (which @types/node does not declare) reads any
 * Uint8Array, so a block needs no Buffer view made for it, and it skips toString's argument handling.
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

/**
 * Up to this length, building the string in JavaScript beats latin1Slice, whose call into C++ costs about
 * as much as ten characters appended here (and strings this short are flat, not rope, when appended to).
 */
const SHORT_STRING = 8;

function latin1(block: Uint8Array, start: number, end: number): string {
  if (end - start > SHORT_STRING) return latin1Slice.call(block, start, end);
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(block[i]!);
  return s;
}

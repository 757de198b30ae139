import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HpackDecoder, HpackError } from "./hpack.js";

/** Octets from the RFC's hex dumps, whitespace ignored. */
function hex(dump: string): Uint8Array {
  return Uint8Array.from(Buffer.from(dump.replace(/\s+/g, ""), "hex"));
}

/** Alternating names and values, as decode returns them. */
function flat(...pairs: [string, string][]): string[] {
  return pairs.flat();
}

/**
 * The dynamic table's entries, newest first, read back through the decoder itself: indexed fields from 62 on
 * until one is past the end (which must throw and leave the table as it was).
 */
function dynamicTable(decoder: HpackDecoder): [string, string][] {
  const entries: [string, string][] = [];
  for (let index = 62; ; index++) {
    let fields: string[];
    try {
      fields = decoder.decode(Uint8Array.from(encodeInteger(index, 7, 0x80)));
    } catch (e) {
      assert.ok(e instanceof HpackError);
      return entries;
    }
    entries.push([fields[0]!, fields[1]!]);
  }
}

function tableSize(entries: [string, string][]): number {
  return entries.reduce((sum, [name, value]) => sum + name.length + value.length + 32, 0);
}

interface Step {
  block: string;
  fields: [string, string][];
  /** Newest first. */
  table: [string, string][];
  size: number;
}

function decodeSeries(maxTableSize: number, steps: Step[]): void {
  const decoder = new HpackDecoder(maxTableSize);
  for (const step of steps) {
    assert.deepEqual(decoder.decode(hex(step.block)), flat(...step.fields));
    const table = dynamicTable(decoder);
    assert.deepEqual(table, step.table);
    assert.equal(tableSize(table), step.size);
  }
}

// A Huffman encoder, to test the decoder with every octet: RFC 7541 Appendix B, kept here apart from the
// decoder's copy so that a mistake in one shows against the other and the RFC's examples.
const CODES: readonly number[] = [
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
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10,
  12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7,
  7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22,
  23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22,
  23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20,
  24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
];

function encodeInteger(value: number, prefixBits: number, flags: number): number[] {
  const limit = (1 << prefixBits) - 1;
  if (value < limit) return [flags | value];
  const out = [flags | limit];
  let rest = value - limit;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function huffmanEncode(octets: Uint8Array): number[] {
  const out: number[] = [];
  let bits = 0; // how many bits `pending` holds, right-aligned
  let pending = 0;
  for (const octet of octets) {
    const code = CODES[octet]!;
    const length = LENGTHS[octet]!;
    for (let i = length - 1; i >= 0; i--) {
      pending = (pending << 1) | ((code >>> i) & 1);
      if (++bits === 8) {
        out.push(pending);
        pending = 0;
        bits = 0;
      }
    }
  }
  // Pad with the most significant bits of EOS: ones.
  if (bits > 0) out.push((pending << (8 - bits)) | (0xff >> bits));
  return out;
}

/** A string literal: length (7-bit prefix, H flag) and octets. */
function stringLiteral(value: string, huffman: boolean): number[] {
  const octets = Buffer.from(value, "latin1");
  const body = huffman ? huffmanEncode(octets) : [...octets];
  return [...encodeInteger(body.length, 7, huffman ? 0x80 : 0), ...body];
}

/** A literal field without indexing, with a new name. */
function literal(name: string, value: string, huffman = false): number[] {
  return [0x00, ...stringLiteral(name, huffman), ...stringLiteral(value, huffman)];
}

function throwsHpack(decoder: HpackDecoder, block: number[] | Uint8Array, message: RegExp, maxListSize?: number): void {
  assert.throws(
    () => decoder.decode(Uint8Array.from(block), maxListSize),
    (e: unknown) => e instanceof HpackError && message.test(e.message),
  );
}

describe("HpackDecoder: RFC 7541 Appendix C", () => {
  it("C.2.1: literal field with indexing", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")), [
      "custom-key",
      "custom-header",
    ]);
    assert.deepEqual(dynamicTable(decoder), [["custom-key", "custom-header"]]);
    assert.equal(tableSize(dynamicTable(decoder)), 55);
  });

  it("C.2.2: literal field without indexing", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex("040c 2f73 616d 706c 652f 7061 7468")), [":path", "/sample/path"]);
    assert.deepEqual(dynamicTable(decoder), []);
  });

  it("C.2.3: literal field never indexed", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), ["password", "secret"]);
    assert.deepEqual(dynamicTable(decoder), []);
  });

  it("C.2.4: indexed field", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex("82")), [":method", "GET"]);
    assert.deepEqual(dynamicTable(decoder), []);
  });

  it("C.3: requests without Huffman coding, one decoder", () => {
    decodeSeries(4096, [
      {
        block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        fields: [
          [":method", "GET"],
          [":scheme", "http"],
          [":path", "/"],
          [":authority", "www.example.com"],
        ],
        table: [[":authority", "www.example.com"]],
        size: 57,
      },
      {
        block: "8286 84be 5808 6e6f 2d63 6163 6865",
        fields: [
          [":method", "GET"],
          [":scheme", "http"],
          [":path", "/"],
          [":authority", "www.example.com"],
          ["cache-control", "no-cache"],
        ],
        table: [
          ["cache-control", "no-cache"],
          [":authority", "www.example.com"],
        ],
        size: 110,
      },
      {
        block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        fields: [
          [":method", "GET"],
          [":scheme", "https"],
          [":path", "/index.html"],
          [":authority", "www.example.com"],
          ["custom-key", "custom-value"],
        ],
        table: [
          ["custom-key", "custom-value"],
          ["cache-control", "no-cache"],
          [":authority", "www.example.com"],
        ],
        size: 164,
      },
    ]);
  });

  it("C.4: requests with Huffman coding, one decoder", () => {
    decodeSeries(4096, [
      {
        block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        fields: [
          [":method", "GET"],
          [":scheme", "http"],
          [":path", "/"],
          [":authority", "www.example.com"],
        ],
        table: [[":authority", "www.example.com"]],
        size: 57,
      },
      {
        block: "8286 84be 5886 a8eb 1064 9cbf",
        fields: [
          [":method", "GET"],
          [":scheme", "http"],
          [":path", "/"],
          [":authority", "www.example.com"],
          ["cache-control", "no-cache"],
        ],
        table: [
          ["cache-control", "no-cache"],
          [":authority", "www.example.com"],
        ],
        size: 110,
      },
      {
        block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        fields: [
          [":method", "GET"],
          [":scheme", "https"],
          [":path", "/index.html"],
          [":authority", "www.example.com"],
          ["custom-key", "custom-value"],
        ],
        table: [
          ["custom-key", "custom-value"],
          ["cache-control", "no-cache"],
          [":authority", "www.example.com"],
        ],
        size: 164,
      },
    ]);
  });

  const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
  const responses = (blocks: [string, string, string]): Step[] => [
    {
      block: blocks[0],
      fields: [
        [":status", "302"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
        ["location", "https://www.example.com"],
      ],
      table: [
        ["location", "https://www.example.com"],
        ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
        ["cache-control", "private"],
        [":status", "302"],
      ],
      size: 222,
    },
    {
      // ":status: 307" evicts ":status: 302".
      block: blocks[1],
      fields: [
        [":status", "307"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
        ["location", "https://www.example.com"],
      ],
      table: [
        [":status", "307"],
        ["location", "https://www.example.com"],
        ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
        ["cache-control", "private"],
      ],
      size: 222,
    },
    {
      // Three additions evict all four older entries but none of the three.
      block: blocks[2],
      fields: [
        [":status", "200"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
        ["location", "https://www.example.com"],
        ["content-encoding", "gzip"],
        ["set-cookie", cookie],
      ],
      table: [
        ["set-cookie", cookie],
        ["content-encoding", "gzip"],
        ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
      ],
      size: 215,
    },
  ];

  it("C.5: responses without Huffman coding, a 256-octet table with evictions", () => {
    decodeSeries(
      256,
      responses([
        `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
        "4803 3330 37c1 c0bf",
        `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
      ]),
    );
  });

  it("C.6: responses with Huffman coding, a 256-octet table with evictions", () => {
    decodeSeries(
      256,
      responses([
        `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
        "4883 640e ffc1 c0bf",
        `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      ]),
    );
  });
});

describe("HpackDecoder: Huffman", () => {
  it("round-trips every octet value, alone and all together", () => {
    const decoder = new HpackDecoder();
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    assert.deepEqual(decoder.decode(Uint8Array.from(literal("x-all", all, true))), ["x-all", all]);
    // Alone, each octet ends in its own amount of padding (or none).
    for (let octet = 0; octet < 256; octet++) {
      const value = String.fromCharCode(octet);
      assert.deepEqual(decoder.decode(Uint8Array.from(literal("x-one", value, true))), ["x-one", value]);
    }
    // Pairs and runs put every code at every bit offset.
    for (let shift = 1; shift < 8; shift++) {
      const value = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i, (i * 31 + shift) & 0xff)).join("");
      assert.deepEqual(decoder.decode(Uint8Array.from(literal("x-pairs", value, true))), ["x-pairs", value]);
    }
  });

  it("decodes an empty Huffman string", () => {
    assert.deepEqual(new HpackDecoder().decode(Uint8Array.from([0x00, 0x80, 0x80])), ["", ""]);
  });

  it("rejects EOS inside a string", () => {
    // The name is EOS's 30 one-bits followed by '?'.
    throwsHpack(new HpackDecoder(), [0x00, 0x85, 0xff, 0xff, 0xff, 0xff, 0xfc, 0x00], /EOS/);
    // 32 one-bits: EOS and 2 bits of padding.
    throwsHpack(new HpackDecoder(), [0x00, 0x01, 0x61, 0x84, 0xff, 0xff, 0xff, 0xff], /EOS/);
  });

  it("rejects padding that is not ones or is longer than 7 bits", () => {
    const cases = [
      [0x00], // '0' (00000) and zero padding
      [0xff], // 8 bits of padding
      [0x1f, 0xff], // 'a' (00011) and 11 bits of padding
      [0xff, 0x9f, 0xff, 0xff, 0xff], // 'a' after 29 bits of padding
    ];
    for (const value of cases) {
      throwsHpack(new HpackDecoder(), [0x00, 0x01, 0x61, 0x80 | value.length, ...value], /padding/);
    }
  });
});

describe("HpackDecoder: malformed blocks", () => {
  it("rejects index 0 and an index past the table", () => {
    throwsHpack(new HpackDecoder(), [0x80], /index 0/);
    throwsHpack(new HpackDecoder(), [0xbe], /past the end/); // 62 with an empty dynamic table
    throwsHpack(new HpackDecoder(), [0x7e, 0x00], /past the end/); // a literal's name at index 62
    const decoder = new HpackDecoder();
    decoder.decode(Uint8Array.from([0x40, ...stringLiteral("a", false), ...stringLiteral("b", false)]));
    assert.deepEqual(decoder.decode(Uint8Array.from([0xbe])), ["a", "b"]);
    throwsHpack(decoder, [0xbf], /past the end/);
  });

  it("rejects a truncated integer or string", () => {
    throwsHpack(new HpackDecoder(), [0xff], /truncated integer/);
    throwsHpack(new HpackDecoder(), [0xff, 0x80], /truncated integer/);
    throwsHpack(new HpackDecoder(), [0x04, 0x0c, 0x2f, 0x73], /truncated string/);
    throwsHpack(new HpackDecoder(), [0x04], /string literal expected/);
    throwsHpack(new HpackDecoder(), [0x40, 0x01, 0x61], /string literal expected/);
  });

  it("rejects an integer that overflows", () => {
    throwsHpack(new HpackDecoder(), [0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], /overflow/);
    throwsHpack(new HpackDecoder(), [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], /overflow/);
  });

  it("applies size updates at the start of a block, several in a row, and rejects one above the maximum", () => {
    const decoder = new HpackDecoder(256);
    decoder.decode(Uint8Array.from([0x40, ...stringLiteral("a", false), ...stringLiteral("b", false)]));
    assert.deepEqual(dynamicTable(decoder), [["a", "b"]]);
    // 256 is allowed (31 + 0x61 + 128); 257 is not.
    throwsHpack(decoder, [0x3f, 0xe2, 0x01], /exceeds the advertised 256/);
    // Down to 0 (evicting everything), then back up to 256, then a field that is indexed again.
    assert.deepEqual(decoder.decode(Uint8Array.from([0x20, 0x3f, 0xe1, 0x01, 0x82])), [":method", "GET"]);
    assert.deepEqual(dynamicTable(decoder), []);
    decoder.decode(Uint8Array.from([0x40, ...stringLiteral("c", false), ...stringLiteral("d", false)]));
    assert.deepEqual(dynamicTable(decoder), [["c", "d"]]);
    // Down to 33: the 34-octet entry no longer fits.
    assert.deepEqual(decoder.decode(Uint8Array.from([0x3f, 0x02])), []);
    assert.deepEqual(dynamicTable(decoder), []);
  });

  it("rejects a size update after a field", () => {
    throwsHpack(new HpackDecoder(), [0x82, 0x20], /after a header field/);
  });
});

describe("HpackDecoder: dynamic table", () => {
  it("keeps entries across ring growth, and reaches indexes past the one-octet form", () => {
    const decoder = new HpackDecoder(65536);
    for (let i = 0; i < 100; i++) {
      decoder.decode(Uint8Array.from([0x40, ...stringLiteral(`n${String(i)}`, false), ...stringLiteral(`v${String(i)}`, true)]));
    }
    // Index 62 is the newest; 161 (two octets: 0xff 0x22) the oldest.
    assert.deepEqual(decoder.decode(Uint8Array.from([0xbe])), ["n99", "v99"]);
    assert.deepEqual(decoder.decode(Uint8Array.from([0xff, 0x22])), ["n0", "v0"]);
    throwsHpack(decoder, [0xff, 0x23], /past the end/);
    const table = dynamicTable(decoder);
    assert.equal(table.length, 100);
    assert.deepEqual(table[37], ["n62", "v62"]);
  });

  it("evicts oldest first, and an entry larger than the table empties it", () => {
    const decoder = new HpackDecoder(100);
    const add = (name: string, value: string): string[] =>
      decoder.decode(Uint8Array.from([0x40, ...stringLiteral(name, false), ...stringLiteral(value, false)]));
    add("a", "1".repeat(10)); // 43
    add("b", "2".repeat(10)); // 43: 86 in all
    add("c", "3".repeat(10)); // 43: "a" goes
    assert.deepEqual(
      dynamicTable(decoder).map(([name]) => name),
      ["c", "b"],
    );
    // An indexed name whose entry is evicted by the addition still names the new entry.
    assert.deepEqual(decoder.decode(Uint8Array.from([0x7f, 0x00, ...stringLiteral("4".repeat(20), false)])), ["b", "4".repeat(20)]);
    assert.deepEqual(dynamicTable(decoder), [
      ["b", "4".repeat(20)],
      ["c", "3".repeat(10)],
    ]);
    assert.deepEqual(add("big", "x".repeat(66)), ["big", "x".repeat(66)]); // 101 > 100
    assert.deepEqual(dynamicTable(decoder), []);
  });
});

describe("HpackDecoder: list size", () => {
  it("bounds the sum of name, value and 32 over the list", () => {
    const block = hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
    // 42 + 43 + 38 + 57
    assert.equal(new HpackDecoder().decode(block, 180).length, 8);
    throwsHpack(new HpackDecoder(), block, /list size exceeds 179/, 179);
  });
});

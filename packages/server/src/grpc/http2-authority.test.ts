import { test } from "node:test";
import assert from "node:assert/strict";
import { AuthorityRewriter, HpackDecoder, encodeLiteralBlock, normalizeAuthority } from "./http2-authority.js";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");

test("HPACK: RFC 7541 C.4 requests (Huffman, dynamic table across blocks)", () => {
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.deepEqual(decoder.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.deepEqual(decoder.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")), [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ]);
});

test("literal blocks decode to what was encoded, long values included", () => {
  const fields: [string, string][] = [
    [":authority", "127.0.0.1:2379"],
    ["x", "y".repeat(300)],
  ];
  assert.deepEqual(new HpackDecoder().decode(encodeLiteralBlock(fields)), fields);
});

test("grpc-go's scheme-prefixed authority is stripped; others are kept", () => {
  assert.equal(normalizeAuthority("http://127.0.0.1:2379"), "127.0.0.1:2379");
  assert.equal(normalizeAuthority("127.0.0.1:2379"), "127.0.0.1:2379");
  assert.equal(normalizeAuthority("unix://socket"), "socket");
});

test("the rewriter re-encodes HEADERS (+CONTINUATION) and passes other frames through, across chunk boundaries", () => {
  const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  const settings = frame(0x4, 0, 0, Buffer.alloc(0));
  const block = encodeLiteralBlock([
    [":method", "POST"],
    [":authority", "http://127.0.0.1:1"],
    [":path", "/x"],
  ]);
  const headers = frame(0x1, 0x1, 1, block.subarray(0, 10)); // END_STREAM, no END_HEADERS
  const continuation = frame(0x9, 0x4, 1, block.subarray(10));
  const data = frame(0x0, 0x1, 3, Buffer.from("abc"));
  const input = Buffer.concat([preface, settings, headers, continuation, data]);
  const rewriter = new AuthorityRewriter();
  const out = Buffer.concat([...input].map((b) => rewriter.push(Buffer.from([b]))));
  assert.deepEqual(out.subarray(0, preface.length + settings.length), Buffer.concat([preface, settings]));
  const rewritten = out.subarray(preface.length + settings.length);
  const length = rewritten.readUIntBE(0, 3);
  assert.equal(rewritten[3], 0x1);
  assert.equal(rewritten[4], 0x1 | 0x4, "END_STREAM kept, END_HEADERS set");
  assert.deepEqual(new HpackDecoder().decode(rewritten.subarray(9, 9 + length)), [
    [":method", "POST"],
    [":authority", "127.0.0.1:1"],
    [":path", "/x"],
  ]);
  assert.deepEqual(rewritten.subarray(9 + length), data);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { isGatewayError } from "./errors.js";
import {
  JsonValueStream,
  checkValid,
  parseJson,
  decodeBase64Go,
  decodeUtf8Go,
  goQuote,
  quoteChar,
  quoteGoString,
  unquoteString,
} from "./go-json.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function errorOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (error) {
    assert.ok(isGatewayError(error, "JsonSyntax"));
    return error.message;
  }
}

test("the value stream splits concatenated values, across chunk boundaries, and ends cleanly", () => {
  const stream = new JsonValueStream();
  const values: string[] = [];
  const drain = (): void => {
    for (;;) {
      const value = stream.next();
      if (value === undefined) return;
      if (!(value instanceof Uint8Array)) {
        values.push("<done>");
        return;
      }
      values.push(text(value));
    }
  };
  for (const chunk of ['{"a":', '1}{"b"', ":[2]}\n  ", "[]", " 12", " "]) {
    stream.push(utf8(chunk));
    drain();
  }
  // `12` is only known to be whole once something follows it.
  assert.deepEqual(values, ['{"a":1}', '{"b":[2]}', "[]", "12"]);
  stream.finish();
  drain();
  assert.deepEqual(values.slice(4), ["<done>"]);
});

test("the value stream reports a syntax error as soon as the byte arrives, and a cut value at the end", () => {
  const bad = new JsonValueStream();
  bad.push(utf8('{"a":1} x'));
  assert.equal(text(bad.next() as Uint8Array), '{"a":1}');
  assert.equal(
    errorOf(() => bad.next()),
    "invalid character 'x' looking for beginning of value",
  );
  assert.equal(
    errorOf(() => bad.next()),
    "invalid character 'x' looking for beginning of value",
  );

  const cut = new JsonValueStream();
  cut.push(utf8('{"a":'));
  assert.equal(cut.next(), undefined);
  cut.finish();
  assert.equal(
    errorOf(() => cut.next()),
    "unexpected EOF",
  );

  const empty = new JsonValueStream();
  empty.push(utf8(" \n\t"));
  empty.finish();
  assert.deepEqual(empty.next(), { done: true });
});

test("checkValid speaks the Go scanner's messages", () => {
  const cases: ReadonlyArray<readonly [string, string | undefined]> = [
    ["", "unexpected end of JSON input"],
    ["  1  ", undefined],
    ["1 2", "invalid character '2' after top-level value"],
    ["{", "unexpected end of JSON input"],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['{"a":1 "b"}', "invalid character '\"' after object key:value pair"],
    ["[1 2]", "invalid character '2' after array element"],
    ['"\\q"', "invalid character 'q' in string escape code"],
    ['"\\u12x4"', "invalid character 'x' in \\u hexadecimal character escape"],
    ["tx", "invalid character 'x' in literal true (expecting 'r')"],
    ["nulL", "invalid character 'L' in literal null (expecting 'l')"],
    ["'a'", "invalid character '\\'' looking for beginning of value"],
    ["-x", "invalid character 'x' in numeric literal"],
  ];
  for (const [input, expected] of cases)
    assert.equal(
      errorOf(() => checkValid(utf8(input))),
      expected,
      input,
    );
});

test("offending bytes are named as strconv.Quote names the code point U+00XX", () => {
  assert.equal(quoteChar(0x09), "'\\t'");
  assert.equal(quoteChar(0x01), "'\\x01'");
  assert.equal(quoteChar(0x7f), "'\\x7f'");
  assert.equal(quoteChar(0x85), "'\\u0085'");
  assert.equal(quoteChar(0xc3), "'Ã'");
  assert.equal(quoteChar(0x5c), "'\\\\'");
});

test("strings unquote as Go does: escapes, surrogate pairs, lone surrogates and bad UTF-8 to U+FFFD", () => {
  assert.equal(unquoteString(utf8('"a\\n\\u00e9\\ud83d\\ude00\\/"')), "a\né😀/");
  assert.equal(unquoteString(utf8('"\\ud800x"')), "\ufffdx");
  assert.equal(decodeUtf8Go(new Uint8Array([0x61, 0xe2, 0x82, 0x62])), "a\ufffd\ufffdb");
  assert.equal(decodeUtf8Go(new Uint8Array([0xed, 0xa0, 0x80])), "\ufffd\ufffd\ufffd");
});

test("strings quote as json.Marshal does (HTML-safe, only \\n \\r \\t short)", () => {
  assert.equal(quoteGoString('<a href="x">&\u2029\b\t'), '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u2029\\u0008\\t"');
  assert.equal(quoteGoString("\ud800"), '"\\ufffd"');
  assert.equal(quoteGoString("😀é"), '"😀é"');
});

test("%q of bytes", () => {
  assert.equal(goQuote(utf8('a"b\\')), '"a\\"b\\\\"');
  assert.equal(goQuote(new Uint8Array([0xff, 0x0a])), '"\\xff\\n"');
  assert.equal(goQuote(utf8("é")), '"é"');
});

test("base64 decodes as base64.StdEncoding with Go's error offsets", () => {
  assert.equal(text(decodeBase64Go(utf8("YWJjZA=="))), "abcd");
  assert.equal(text(decodeBase64Go(utf8("YW\r\nJj"))), "abc");
  assert.equal(decodeBase64Go(utf8("")).length, 0);
  const cases: ReadonlyArray<readonly [string, number]> = [
    ["YQ", 0],
    ["YWJjZA", 4],
    ["YWJjZA=", 7],
    ["YWJjZ===", 5],
    ["=YWJj", 0],
    ["Y===", 1],
    ["YQ==YQ==", 4],
    ["Y Q==", 1],
  ];
  for (const [input, at] of cases) {
    assert.equal(
      errorOf(() => decodeBase64Go(utf8(input))),
      `illegal base64 data at input byte ${at}`,
      input,
    );
  }
});

test("the value stream takes a large value in small chunks", () => {
  const big = `{"value":"${"QUJD".repeat(500_000)}"}`;
  const bytes = utf8(`${big}\n${big}`);
  const stream = new JsonValueStream();
  const seen: number[] = [];
  for (let i = 0; i < bytes.length; i += 1000) {
    stream.push(bytes.subarray(i, i + 1000));
    for (let v = stream.next(); v instanceof Uint8Array; v = stream.next()) seen.push(v.length);
  }
  // An object is complete at its closing brace, without waiting for the end of input.
  assert.deepEqual(seen, [big.length, big.length]);
  stream.finish();
  assert.deepEqual(stream.next(), { done: true });
});

test("nesting as deep as Go's scanner allows parses without recursion; one level more is Go's depth error", () => {
  // Go's maxNestingDepth is 10000 (the outer object counts): etcd answers 200 below it and 400 above.
  const deep = (n: number): Uint8Array => utf8(`{"key":"YQ==","zz":${"[".repeat(n)}${"]".repeat(n)}}`);
  const node = parseJson(deep(9999));
  assert.equal(node.kind, "object");
  let inner = node.entries.get("zz");
  let depth = 0;
  while (inner?.kind === "array") {
    depth++;
    inner = inner.items[0];
  }
  assert.equal(depth, 9999);
  assert.equal(
    errorOf(() => parseJson(deep(10000))),
    "invalid character '[' exceeded max depth",
  );
  const objects = utf8(`${'{"a":'.repeat(9999)}1${"}".repeat(9999)}`);
  assert.equal(parseJson(objects).kind, "object");
});

test("the parser keeps Go's map semantics and source text at every level", () => {
  const node = parseJson(utf8(' { "a" : [ 1 , {"b":true,"b":null} , [] , {} ] , "a2":"x\\u0041" } '));
  assert.equal(node.kind, "object");
  assert.deepEqual([...node.entries.keys()], ["a", "a2"]);
  const a = node.entries.get("a");
  assert.equal(a?.kind, "array");
  assert.deepEqual(
    a.items.map((item) => text(item.raw)),
    ["1", '{"b":true,"b":null}', "[]", "{}"],
  );
  const inner = a.items[1];
  assert.equal(inner?.kind === "object" ? inner.entries.get("b")?.kind : undefined, "null");
  assert.equal(text(node.raw), '{ "a" : [ 1 , {"b":true,"b":null} , [] , {} ] , "a2":"x\\u0041" }');
});

test("the value stream refuses a value longer than its limit while it is read, and keeps nothing after", () => {
  const stream = new JsonValueStream(64);
  // Values under the limit pass, also when one chunk holds the end of one and the start of the next.
  stream.push(utf8(`{"a":"${"x".repeat(40)}"} {"b":`));
  assert.equal(text(stream.next() as Uint8Array), `{"a":"${"x".repeat(40)}"}`);
  assert.equal(stream.next(), undefined);
  stream.push(utf8(`"${"y".repeat(50)}"}`));
  assert.equal(text(stream.next() as Uint8Array), `{"b":"${"y".repeat(50)}"}`);
  // A value that grows past 64 bytes fails as soon as the bytes are there, before it ends.
  stream.push(utf8(`{"c":"`));
  for (let i = 0; i < 2; i++) {
    stream.push(utf8("z".repeat(25)));
    assert.equal(stream.next(), undefined);
  }
  stream.push(utf8("z".repeat(25)));
  let thrown: unknown;
  try {
    stream.next();
  } catch (error) {
    thrown = error;
  }
  assert.ok(isGatewayError(thrown, "JsonTooLarge"), String(thrown));
  assert.equal(stream.bufferedBytes, 0);
  stream.push(new Uint8Array(1 << 20));
  assert.equal(stream.bufferedBytes, 0);
  assert.throws(
    () => stream.next(),
    (error: unknown) => isGatewayError(error, "JsonTooLarge"),
  );
  // Leading whitespace counts: a body of nothing but spaces is bounded too.
  const spaces = new JsonValueStream(1000);
  spaces.push(new Uint8Array(1001).fill(0x20));
  assert.throws(
    () => spaces.next(),
    (error: unknown) => isGatewayError(error, "JsonTooLarge"),
  );
});

test("the canonical base64 fast path decodes exactly as the byte-by-byte path", () => {
  for (const input of ["", "YQ==", "YWI=", "YWJj", "YWJjZA==", "////", "+/+/", "YR==", "YWJ=", "AAAAAAAA"]) {
    const expected = Buffer.from(input, "base64");
    assert.deepEqual(Buffer.from(decodeBase64Go(utf8(input))), expected, input);
    // The same input with a line break takes the slow path.
    if (input.length > 0) assert.deepEqual(Buffer.from(decodeBase64Go(utf8(`${input}\n`))), expected, input);
  }
});

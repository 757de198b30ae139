/**
 * The parts of Go's `encoding/json` (go1.19) and `encoding/base64` whose exact behaviour leaks into etcd's
 * gateway answers: the scanner's syntax-error messages, `json.Decoder`'s splitting of a byte stream into
 * values, string unquoting (bad UTF-8 and lone surrogates become U+FFFD byte by byte), string quoting as
 * `json.Marshal` does it (HTML-safe), and `base64.StdEncoding.Decode`'s error offsets.
 *
 * Everything works on bytes: a JSON text is a `Uint8Array`, offsets are byte offsets.
 */
import { GatewayError } from "./errors.js";

/** Go's `io.ErrUnexpectedEOF` text, returned by `json.Decoder` for a value cut short by the end of input. */
export const UNEXPECTED_EOF = "unexpected EOF";

// Scanner opcodes (a subset of Go's; the decoder only needs these distinctions).
const SCAN_CONTINUE = 0;
const SCAN_END_COMPOSITE = 1; // `}` or `]` closed a value
const SCAN_END = 2; // top-level value ended before this byte
const SCAN_ERROR = 3;

const PARSE_OBJECT_KEY = 0;
const PARSE_OBJECT_VALUE = 1;
const PARSE_ARRAY_VALUE = 2;

const MAX_NESTING_DEPTH = 10000;

type Step = (s: Scanner, c: number) => number;

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** Go's `quoteChar`: how the scanner names an offending byte in its messages. */
export function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  // strconv.Quote(string(rune(c))): a byte is read as the code point U+00XX.
  const q = goQuoteRune(c);
  return `'${q}'`;
}

/** strconv.Quote of a single code point below U+0100, without the surrounding quotes. */
function goQuoteRune(r: number): string {
  switch (r) {
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x0b:
      return "\\v";
    case 0x5c:
      return "\\\\";
  }
  if (r < 0x20 || r === 0x7f) return `\\x${r.toString(16).padStart(2, "0")}`;
  // U+0080–U+009F, U+00A0 (no-break space) and U+00AD (soft hyphen) are not printable for strconv.
  if ((r >= 0x80 && r <= 0xa0) || r === 0xad) return `\\u${r.toString(16).padStart(4, "0")}`;
  return String.fromCharCode(r);
}

/** Go's JSON scanner state machine (scanner.go), byte at a time. */
class Scanner {
  step: Step = stateBeginValue;
  endTop = false;
  parseState: number[] = [];
  error: string | undefined;

  reset(): void {
    this.step = stateBeginValue;
    this.parseState = [];
    this.error = undefined;
    this.endTop = false;
  }

  fail(c: number, context: string): number {
    this.step = stateError;
    this.error = `invalid character ${quoteChar(c)} ${context}`;
    return SCAN_ERROR;
  }

  /** Tells the scanner the input ended; SCAN_END if a complete value was seen. */
  eof(): number {
    if (this.error !== undefined) return SCAN_ERROR;
    if (this.endTop) return SCAN_END;
    this.step(this, 0x20);
    // step() may have set both.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (this.endTop) return SCAN_END;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (this.error === undefined) this.error = "unexpected end of JSON input";
    return SCAN_ERROR;
  }

  push(c: number, state: number): number {
    this.parseState.push(state);
    if (this.parseState.length <= MAX_NESTING_DEPTH) return SCAN_CONTINUE;
    return this.fail(c, "exceeded max depth");
  }

  pop(): void {
    this.parseState.pop();
    if (this.parseState.length === 0) {
      this.step = stateEndTop;
      this.endTop = true;
    } else {
      this.step = stateEndValue;
    }
  }
}

const stateError: Step = () => SCAN_ERROR;

const stateBeginValueOrEmpty: Step = (s, c) => {
  if (isSpace(c)) return SCAN_CONTINUE;
  if (c === 0x5d) return stateEndValue(s, c);
  return stateBeginValue(s, c);
};

const stateBeginValue: Step = (s, c) => {
  if (isSpace(c)) return SCAN_CONTINUE;
  switch (c) {
    case 0x7b: // {
      s.step = stateBeginStringOrEmpty;
      return s.push(c, PARSE_OBJECT_KEY);
    case 0x5b: // [
      s.step = stateBeginValueOrEmpty;
      return s.push(c, PARSE_ARRAY_VALUE);
    case 0x22:
      s.step = stateInString;
      return SCAN_CONTINUE;
    case 0x2d:
      s.step = stateNeg;
      return SCAN_CONTINUE;
    case 0x30:
      s.step = state0;
      return SCAN_CONTINUE;
    case 0x74:
      s.step = literal("true", 1, "true");
      return SCAN_CONTINUE;
    case 0x66:
      s.step = literal("false", 1, "false");
      return SCAN_CONTINUE;
    case 0x6e:
      s.step = literal("null", 1, "null");
      return SCAN_CONTINUE;
  }
  if (c >= 0x31 && c <= 0x39) {
    s.step = state1;
    return SCAN_CONTINUE;
  }
  return s.fail(c, "looking for beginning of value");
};

const stateBeginStringOrEmpty: Step = (s, c) => {
  if (isSpace(c)) return SCAN_CONTINUE;
  if (c === 0x7d) {
    s.parseState[s.parseState.length - 1] = PARSE_OBJECT_VALUE;
    return stateEndValue(s, c);
  }
  return stateBeginString(s, c);
};

const stateBeginString: Step = (s, c) => {
  if (isSpace(c)) return SCAN_CONTINUE;
  if (c === 0x22) {
    s.step = stateInString;
    return SCAN_CONTINUE;
  }
  return s.fail(c, "looking for beginning of object key string");
};

const stateEndValue: Step = (s, c) => {
  const n = s.parseState.length;
  if (n === 0) {
    s.step = stateEndTop;
    s.endTop = true;
    return stateEndTop(s, c);
  }
  if (isSpace(c)) {
    s.step = stateEndValue;
    return SCAN_CONTINUE;
  }
  switch (s.parseState[n - 1]) {
    case PARSE_OBJECT_KEY:
      if (c === 0x3a) {
        s.parseState[n - 1] = PARSE_OBJECT_VALUE;
        s.step = stateBeginValue;
        return SCAN_CONTINUE;
      }
      return s.fail(c, "after object key");
    case PARSE_OBJECT_VALUE:
      if (c === 0x2c) {
        s.parseState[n - 1] = PARSE_OBJECT_KEY;
        s.step = stateBeginString;
        return SCAN_CONTINUE;
      }
      if (c === 0x7d) {
        s.pop();
        return SCAN_END_COMPOSITE;
      }
      return s.fail(c, "after object key:value pair");
    default:
      if (c === 0x2c) {
        s.step = stateBeginValue;
        return SCAN_CONTINUE;
      }
      if (c === 0x5d) {
        s.pop();
        return SCAN_END_COMPOSITE;
      }
      return s.fail(c, "after array element");
  }
};

const stateEndTop: Step = (s, c) => {
  // Complain about a non-space byte on the next call, as Go does.
  if (!isSpace(c)) s.fail(c, "after top-level value");
  return SCAN_END;
};

const stateInString: Step = (s, c) => {
  if (c === 0x22) {
    s.step = stateEndValue;
    return SCAN_CONTINUE;
  }
  if (c === 0x5c) {
    s.step = stateInStringEsc;
    return SCAN_CONTINUE;
  }
  if (c < 0x20) return s.fail(c, "in string literal");
  return SCAN_CONTINUE;
};

const stateInStringEsc: Step = (s, c) => {
  switch (c) {
    case 0x62:
    case 0x66:
    case 0x6e:
    case 0x72:
    case 0x74:
    case 0x5c:
    case 0x2f:
    case 0x22:
      s.step = stateInString;
      return SCAN_CONTINUE;
    case 0x75:
      s.step = hexEscape(4);
      return SCAN_CONTINUE;
  }
  return s.fail(c, "in string escape code");
};

function hexEscape(remaining: number): Step {
  return (s, c) => {
    if (!isHex(c)) return s.fail(c, "in \\u hexadecimal character escape");
    s.step = remaining === 1 ? stateInString : hexEscape(remaining - 1);
    return SCAN_CONTINUE;
  };
}

const stateNeg: Step = (s, c) => {
  if (c === 0x30) {
    s.step = state0;
    return SCAN_CONTINUE;
  }
  if (c >= 0x31 && c <= 0x39) {
    s.step = state1;
    return SCAN_CONTINUE;
  }
  return s.fail(c, "in numeric literal");
};

const state1: Step = (s, c) => {
  if (isDigit(c)) {
    s.step = state1;
    return SCAN_CONTINUE;
  }
  return state0(s, c);
};

const state0: Step = (s, c) => {
  if (c === 0x2e) {
    s.step = stateDot;
    return SCAN_CONTINUE;
  }
  if (c === 0x65 || c === 0x45) {
    s.step = stateE;
    return SCAN_CONTINUE;
  }
  return stateEndValue(s, c);
};

const stateDot: Step = (s, c) => {
  if (isDigit(c)) {
    s.step = stateDot0;
    return SCAN_CONTINUE;
  }
  return s.fail(c, "after decimal point in numeric literal");
};

const stateDot0: Step = (s, c) => {
  if (isDigit(c)) return SCAN_CONTINUE;
  if (c === 0x65 || c === 0x45) {
    s.step = stateE;
    return SCAN_CONTINUE;
  }
  return stateEndValue(s, c);
};

const stateE: Step = (s, c) => {
  if (c === 0x2b || c === 0x2d) {
    s.step = stateESign;
    return SCAN_CONTINUE;
  }
  return stateESign(s, c);
};

const stateESign: Step = (s, c) => {
  if (isDigit(c)) {
    s.step = stateE0;
    return SCAN_CONTINUE;
  }
  return s.fail(c, "in exponent of numeric literal");
};

const stateE0: Step = (s, c) => {
  if (isDigit(c)) return SCAN_CONTINUE;
  return stateEndValue(s, c);
};

/** `true`, `false`, `null`: one state per remaining letter, with Go's "(expecting 'x')" messages. */
function literal(word: string, index: number, name: string): Step {
  return (s, c) => {
    const expected = word.charCodeAt(index);
    if (c !== expected) return s.fail(c, `in literal ${name} (expecting '${word[index]}')`);
    s.step = index === word.length - 1 ? stateEndValue : literal(word, index + 1, name);
    return SCAN_CONTINUE;
  };
}

/**
 * `json.Unmarshal`'s first step (checkValid): throws the SyntaxError Go would report for `data`, or returns
 * normally if `data` is exactly one JSON value surrounded by optional whitespace.
 */
export function checkValid(data: Uint8Array): void {
  const scanner = new Scanner();
  for (let i = 0; i < data.length; i++) {
    if (scanner.step === stateInString) {
      i = skipPlainStringBytes(data, i, data.length);
      if (i === data.length) break;
    }
    if (scanner.step(scanner, data[i]!) === SCAN_ERROR) throw new GatewayError("JsonSyntax", scanner.error ?? "");
  }
  if (scanner.eof() === SCAN_ERROR) throw new GatewayError("JsonSyntax", scanner.error ?? "");
}

/**
 * Inside a string literal, the scanner only acts on `"`, `\` and control bytes; this skips the run of
 * other bytes before one of those (or `end`) in one tight loop, so a large value is not fed to the state
 * machine byte by byte. Returns the index of the first byte the scanner must see.
 */
function skipPlainStringBytes(data: Uint8Array, from: number, end: number): number {
  let i = from;
  while (i < end) {
    const c = data[i]!;
    if (c === 0x22 || c === 0x5c || c < 0x20) break;
    i++;
  }
  return i;
}

/**
 * `json.Decoder` over a byte stream: `push` bytes as they arrive, `finish()` at end of input, and take complete
 * values with `next()`. Like Go's decoder it reports a syntax error as soon as the offending byte arrives,
 * ends a value at its closing `}`/`]` without waiting for more input, and distinguishes a clean end of input
 * (`{ done: true }`) from a value cut short (`unexpected EOF`). Errors are sticky.
 */
export class JsonValueStream {
  // Unconsumed input is data[start, end); the buffer grows by doubling so a large body costs O(n) copies.
  private data = new Uint8Array(1024);
  private start = 0;
  private end = 0;
  private scanned = 0; // bytes after `start` already fed to the scanner for the value in progress
  private readonly scanner = new Scanner();
  private ended = false;
  private error: GatewayError | undefined;

  /**
   * `maxValueBytes` bounds one value, its leading whitespace included: `next()` throws GatewayError
   * `JsonTooLarge` once the value in progress is longer, and from then on `push` drops its input, so a
   * caller that calls `next()` after each `push` never holds more than the limit plus one chunk.
   * Unbounded by default.
   */
  constructor(private readonly maxValueBytes = Number.POSITIVE_INFINITY) {}

  /** Bytes held: the value in progress and any input after it not yet taken. */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.error !== undefined) return;
    if (this.end + chunk.length > this.data.length) {
      const live = this.end - this.start;
      let capacity = this.data.length;
      while (capacity < live + chunk.length) capacity *= 2;
      const grown = capacity === this.data.length ? this.data : new Uint8Array(capacity);
      grown.set(this.data.subarray(this.start, this.end), 0);
      this.data = grown;
      this.end = live;
      this.start = 0;
    }
    this.data.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Marks the end of input. */
  finish(): void {
    this.ended = true;
  }

  /**
   * The next complete value (its bytes, whitespace trimmed at the front), `{ done: true }` at a clean end of
   * input, `undefined` if more input is needed; throws GatewayError `JsonSyntax` on a syntax error or a
   * truncated value, `JsonTooLarge` for a value over the limit.
   */
  next(): Uint8Array | { done: true } | undefined {
    if (this.error !== undefined) throw this.error;
    const s = this.scanner;
    if (this.scanned === 0) s.reset();
    const length = this.end - this.start;
    const scanEnd = Math.min(length, this.maxValueBytes);
    const data = this.data;
    const base = this.start;
    for (; this.scanned < scanEnd; this.scanned++) {
      if (s.step === stateInString) {
        this.scanned = skipPlainStringBytes(data, base + this.scanned, base + scanEnd) - base;
        if (this.scanned === scanEnd) break;
      }
      const op = s.step(s, data[base + this.scanned]!);
      if (op === SCAN_END) return this.take(this.scanned);
      if (op === SCAN_END_COMPOSITE && s.parseState.length === 0) return this.take(this.scanned + 1);
      if (op === SCAN_ERROR) {
        this.error = new GatewayError("JsonSyntax", s.error ?? "");
        throw this.error;
      }
    }
    if (length > this.maxValueBytes) {
      this.error = new GatewayError("JsonTooLarge", `JSON value larger than ${this.maxValueBytes} bytes`);
      this.data = new Uint8Array(0);
      this.start = this.end = 0;
      throw this.error;
    }
    if (!this.ended) return undefined;
    if (s.step(s, 0x20) === SCAN_END) return this.take(this.scanned);
    if (this.data.subarray(this.start, this.end).some((c) => !isSpace(c))) {
      this.error = new GatewayError("JsonSyntax", UNEXPECTED_EOF);
      throw this.error;
    }
    return { done: true };
  }

  private take(length: number): Uint8Array {
    let first = this.start;
    const last = this.start + length;
    while (first < last && isSpace(this.data[first]!)) first++;
    const value = this.data.slice(first, last);
    this.start = last;
    this.scanned = 0;
    return value;
  }
}

/** A parsed (already validated) JSON value; leaves keep their source text for Go's literal rules. */
export type JsonNode =
  | { readonly kind: "object"; readonly entries: Map<string, JsonNode>; readonly raw: Uint8Array }
  | { readonly kind: "array"; readonly items: JsonNode[]; readonly raw: Uint8Array }
  | { readonly kind: "string"; readonly raw: Uint8Array }
  | { readonly kind: "number"; readonly raw: Uint8Array }
  | { readonly kind: "bool"; readonly value: boolean; readonly raw: Uint8Array }
  | { readonly kind: "null"; readonly raw: Uint8Array };

/**
 * A node's source text is cut out of the input only when asked for: a body of a million small values
 * would otherwise cost a million typed-array views.
 */
class Node {
  constructor(
    readonly kind: JsonNode["kind"],
    private readonly data: Uint8Array,
    private readonly start: number,
    private readonly end: number,
    readonly value?: boolean,
    readonly entries?: Map<string, JsonNode>,
    readonly items?: JsonNode[],
  ) {}

  get raw(): Uint8Array {
    return this.data.subarray(this.start, this.end);
  }
}

const node = (
  kind: JsonNode["kind"],
  p: Parser,
  start: number,
  value?: boolean,
  entries?: Map<string, JsonNode>,
  items?: JsonNode[],
): JsonNode => new Node(kind, p.data, start, p.pos, value, entries, items) as JsonNode;

/**
 * Parses one JSON value (validating it first with Go's messages). Object keys are unquoted as Go does and a
 * repeated key keeps its last value, as decoding into a Go map does. The parser keeps its own stack of open
 * objects and arrays, so nesting as deep as Go's scanner allows (10000) costs heap, not call stack.
 */
export function parseJson(data: Uint8Array): JsonNode {
  return runToEnd(parseJsonSteps(data, false));
}

/** How many values the parser reads between two pauses of `parseJsonSteps`. */
const VALUES_PER_STEP = 4096;

/**
 * `parseJson` in steps: the generator pauses (yields) every few thousand values, so a driver can spread a
 * large body over several turns of the event loop; its return value is the parsed value. `validated`
 * skips the syntax check for input a JsonValueStream has already scanned.
 */
export function* parseJsonSteps(data: Uint8Array, validated: boolean): Generator<void, JsonNode, void> {
  if (!validated) checkValid(data);
  const p = { data, pos: 0 };
  skipSpace(p);
  return yield* parseValue(p);
}

/** Runs a stepped computation to its end without pausing. */
export function runToEnd<T>(steps: Generator<unknown, T, void>): T {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

interface Parser {
  readonly data: Uint8Array;
  pos: number;
}

function skipSpace(p: Parser): void {
  while (p.pos < p.data.length && isSpace(p.data[p.pos]!)) p.pos++;
}

/** An object or array still open while the parser reads its members. */
type OpenContainer =
  | { readonly kind: "object"; readonly start: number; readonly entries: Map<string, JsonNode>; key: string }
  | { readonly kind: "array"; readonly start: number; readonly items: JsonNode[] };

/** Reads `"key" :` and the space after it. */
function readKey(p: Parser): string {
  skipSpace(p);
  const keyStart = p.pos;
  skipString(p);
  const key = unquoteString(p.data.subarray(keyStart, p.pos));
  skipSpace(p);
  p.pos++; // :
  skipSpace(p);
  return key;
}

// The input is known valid, so the parser need not re-check syntax.
function* parseValue(p: Parser): Generator<void, JsonNode, void> {
  const open: OpenContainer[] = [];
  for (;;) {
    const value = parseSome(p, open, VALUES_PER_STEP);
    if (value !== undefined) return value;
    yield;
  }
}

/**
 * Reads up to `budget` values of the one being parsed; the parse state is `p` and the stack of open
 * containers, so the next call goes on where this one stopped. The value once complete, else undefined.
 * (A plain function: the hot loop runs faster outside a generator.)
 */
function parseSome(p: Parser, open: OpenContainer[], budget: number): JsonNode | undefined {
  for (; budget > 0; budget--) {
    const start = p.pos;
    const c = p.data[p.pos]!;
    let value: JsonNode;
    if (c === 0x7b || c === 0x5b) {
      p.pos++;
      skipSpace(p);
      if (p.data[p.pos] === c + 2) {
        // `{}` or `[]`: the closing byte is the opening one plus two in ASCII.
        p.pos++;
        value = c === 0x7b ? node("object", p, start, undefined, new Map()) : node("array", p, start, undefined, undefined, []);
      } else {
        if (c === 0x7b) open.push({ kind: "object", start, entries: new Map(), key: readKey(p) });
        else open.push({ kind: "array", start, items: [] });
        continue;
      }
    } else {
      value = parseScalar(p);
    }
    // Hand the finished value to its container; close every container that ends right after it.
    for (;;) {
      const top = open[open.length - 1];
      if (top === undefined) return value;
      if (top.kind === "object") {
        top.entries.delete(top.key); // a repeated key keeps its last value and position is irrelevant
        top.entries.set(top.key, value);
      } else {
        top.items.push(value);
      }
      skipSpace(p);
      if (p.data[p.pos++] === 0x2c) {
        if (top.kind === "object") top.key = readKey(p);
        else skipSpace(p);
        break;
      }
      open.pop();
      value =
        top.kind === "object"
          ? node("object", p, top.start, undefined, top.entries)
          : node("array", p, top.start, undefined, undefined, top.items);
    }
  }
  return undefined;
}

function parseScalar(p: Parser): JsonNode {
  const start = p.pos;
  const c = p.data[p.pos]!;
  if (c === 0x22) {
    skipString(p);
    return node("string", p, start);
  }
  if (c === 0x74) {
    p.pos += 4;
    return node("bool", p, start, true);
  }
  if (c === 0x66) {
    p.pos += 5;
    return node("bool", p, start, false);
  }
  if (c === 0x6e) {
    p.pos += 4;
    return node("null", p, start);
  }
  while (p.pos < p.data.length && isNumberByte(p.data[p.pos]!)) p.pos++;
  return node("number", p, start);
}

/** `-+.eE0-9`: the bytes a (valid) number literal is made of. */
const isNumberByte = (c: number): boolean => isDigit(c) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;

function skipString(p: Parser): void {
  const data = p.data;
  let i = p.pos + 1; // after the opening quote
  for (;;) {
    const c = data[i]!;
    if (c === 0x22) break;
    i += c === 0x5c ? 2 : 1;
  }
  p.pos = i + 1;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes UTF-8 the way Go's `utf8.DecodeRune` loop does: each byte of a bad sequence becomes U+FFFD. */
export function decodeUtf8Go(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    // fall through to the byte-wise path for invalid input
  }
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const [rune, size] = decodeRune(bytes, i);
    out += String.fromCodePoint(rune);
    i += size;
  }
  return out;
}

/** utf8.DecodeRune: a valid rune and its size, or (U+FFFD, 1). */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c0 = b[i]!;
  if (c0 < 0x80) return [c0, 1];
  const cont = (k: number, lo = 0x80, hi = 0xbf): number | undefined => {
    const c = b[i + k];
    return c !== undefined && c >= lo && c <= hi ? c & 0x3f : undefined;
  };
  if (c0 >= 0xc2 && c0 <= 0xdf) {
    const c1 = cont(1);
    if (c1 !== undefined) return [((c0 & 0x1f) << 6) | c1, 2];
  } else if (c0 >= 0xe0 && c0 <= 0xef) {
    const c1 = cont(1, c0 === 0xe0 ? 0xa0 : 0x80, c0 === 0xed ? 0x9f : 0xbf);
    const c2 = cont(2);
    if (c1 !== undefined && c2 !== undefined) return [((c0 & 0x0f) << 12) | (c1 << 6) | c2, 3];
  } else if (c0 >= 0xf0 && c0 <= 0xf4) {
    const c1 = cont(1, c0 === 0xf0 ? 0x90 : 0x80, c0 === 0xf4 ? 0x8f : 0xbf);
    const c2 = cont(2);
    const c3 = cont(3);
    if (c1 !== undefined && c2 !== undefined && c3 !== undefined) {
      return [((c0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3, 4];
    }
  }
  return [0xfffd, 1];
}

/**
 * Go's `unquote` for a JSON string literal (with its quotes): escapes resolved, a surrogate pair joined, a
 * lone surrogate and each byte of invalid UTF-8 turned into U+FFFD. Returns the UTF-8 bytes, because a
 * `[]byte` target base64-decodes them.
 */
export function unquoteBytes(literal: Uint8Array): Uint8Array {
  const inner = literal.subarray(1, literal.length - 1);
  if (!inner.includes(0x5c)) return isAscii(inner) ? inner : new TextEncoder().encode(decodeUtf8Go(inner));
  let out = "";
  let runStart = 0;
  let i = 0;
  const flush = (end: number): void => {
    if (end > runStart) out += decodeUtf8Go(inner.subarray(runStart, end));
  };
  while (i < inner.length) {
    if (inner[i] !== 0x5c) {
      i++;
      continue;
    }
    flush(i);
    const e = inner[i + 1]!;
    i += 2;
    switch (e) {
      case 0x62:
        out += "\b";
        break;
      case 0x66:
        out += "\f";
        break;
      case 0x6e:
        out += "\n";
        break;
      case 0x72:
        out += "\r";
        break;
      case 0x74:
        out += "\t";
        break;
      case 0x75: {
        let rune = readHex4(inner, i);
        i += 4;
        if (rune >= 0xd800 && rune < 0xe000) {
          const low = inner[i] === 0x5c && inner[i + 1] === 0x75 ? readHex4(inner, i + 2) : -1;
          if (rune < 0xdc00 && low >= 0xdc00 && low < 0xe000) {
            rune = 0x10000 + ((rune - 0xd800) << 10) + (low - 0xdc00);
            i += 6;
          } else {
            rune = 0xfffd;
          }
        }
        out += String.fromCodePoint(rune);
        break;
      }
      default:
        out += String.fromCharCode(e); // \\ \/ \"
    }
    runStart = i;
  }
  flush(inner.length);
  return new TextEncoder().encode(out);
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

function readHex4(b: Uint8Array, i: number): number {
  return parseInt(String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!), 16);
}

/** Go's unquote of a JSON string literal, as a JS string. */
export function unquoteString(literal: Uint8Array): string {
  return new TextDecoder().decode(unquoteBytes(literal));
}

/** A character `quoteGoString` writes other than as itself (one native scan decides most strings). */
// eslint-disable-next-line no-control-regex -- control characters are among those escaped
const NEEDS_GO_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/;

/**
 * `json.Marshal` of a Go string (go1.19): `"`, `\` and control characters escaped (only \n \r \t by their
 * short form), and the HTML-sensitive `<`, `>`, `&` plus U+2028/U+2029 as \u escapes.
 */
export function quoteGoString(s: string): string {
  if (!NEEDS_GO_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let escaped: string | undefined;
    if (c < 0x20) {
      escaped = c === 0x0a ? "\\n" : c === 0x0d ? "\\r" : c === 0x09 ? "\\t" : `\\u00${c.toString(16).padStart(2, "0")}`;
    } else if (c === 0x22) escaped = '\\"';
    else if (c === 0x5c) escaped = "\\\\";
    else if (c === 0x3c) escaped = "\\u003c";
    else if (c === 0x3e) escaped = "\\u003e";
    else if (c === 0x26) escaped = "\\u0026";
    else if (c === 0x2028) escaped = "\\u2028";
    else if (c === 0x2029) escaped = "\\u2029";
    else if (c >= 0xd800 && c < 0xe000) {
      // A lone surrogate is not valid UTF-8; Go writes U+FFFD for it.
      const pair = c < 0xdc00 && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) < 0xe000;
      if (pair) {
        i++;
        continue;
      }
      escaped = "\\ufffd";
    }
    if (escaped !== undefined) {
      out += s.slice(runStart, i) + escaped;
      runStart = i + 1;
    }
  }
  return out + s.slice(runStart) + '"';
}

/**
 * strconv.Quote as `fmt`'s `%q` prints a byte slice: printable ASCII and valid printable UTF-8 as is,
 * common escapes by their short form, anything else as \xNN / \uNNNN.
 */
export function goQuote(bytes: Uint8Array): string {
  let out = '"';
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c < 0x80) {
      if (c === 0x22) out += '\\"';
      else if (c >= 0x20 && c < 0x7f) out += c === 0x5c ? "\\\\" : String.fromCharCode(c);
      else out += goQuoteRune(c);
      i++;
      continue;
    }
    const [rune, size] = decodeRune(bytes, i);
    if (rune === 0xfffd && size === 1) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (rune < 0x100) out += goQuoteRune(rune);
    else out += String.fromCodePoint(rune); // printable-ness of non-Latin-1 runes is not modelled
    i += size;
  }
  return out + '"';
}

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < BASE64_ALPHABET.length; i++) BASE64_DECODE[BASE64_ALPHABET.charCodeAt(i)] = i;

/**
 * `base64.StdEncoding.Decode` (padded, not strict): `\r` and `\n` are skipped anywhere; a bad byte, missing or
 * misplaced padding, or data after the padding throws "illegal base64 data at input byte N" with Go's N.
 */
export function decodeBase64Go(src: Uint8Array): Uint8Array {
  const plain = decodeCanonicalBase64(src);
  if (plain !== undefined) return plain;
  const out: number[] = [];
  const corrupt = (at: number): GatewayError => new GatewayError("JsonSyntax", `illegal base64 data at input byte ${at}`);
  let si = 0;
  while (si < src.length) {
    const dbuf = [0, 0, 0, 0];
    let dlen = 4;
    let trailingGarbageAt = -1;
    let j = 0;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Uint8Array.from(out);
        throw corrupt(si - j);
      }
      const ch = src[si]!;
      si++;
      const v = BASE64_DECODE[ch]!;
      if (v >= 0) {
        dbuf[j] = v;
        continue;
      }
      if (ch === 0x0a || ch === 0x0d) {
        j--;
        continue;
      }
      if (ch !== 0x3d) throw corrupt(si - 1);
      // Padding: only after two or three data characters.
      if (j === 0 || j === 1) throw corrupt(si - 1);
      if (j === 2) {
        while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
        if (si === src.length) throw corrupt(src.length);
        if (src[si] !== 0x3d) throw corrupt(si - 1);
        si++;
      }
      while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
      if (si < src.length) trailingGarbageAt = si;
      dlen = j;
      break;
    }
    const val = (dbuf[0]! << 18) | (dbuf[1]! << 12) | (dbuf[2]! << 6) | dbuf[3]!;
    const bytes = [(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff];
    out.push(...bytes.slice(0, dlen - 1));
    if (trailingGarbageAt >= 0) throw corrupt(trailingGarbageAt);
    if (dlen < 4) return Uint8Array.from(out);
  }
  return Uint8Array.from(out);
}

/**
 * The common case of `decodeBase64Go` in one native call: input made only of alphabet bytes, a length that
 * is a multiple of four and at most two `=` at the end decodes the same in Go and in Node. Anything else
 * (line breaks, bad bytes, misplaced padding) is `undefined`, for the byte-by-byte path and its messages.
 */
function decodeCanonicalBase64(src: Uint8Array): Uint8Array | undefined {
  const n = src.length;
  if (n % 4 !== 0) return undefined;
  let data = n;
  if (n > 0 && src[n - 1] === 0x3d) data = src[n - 2] === 0x3d ? n - 2 : n - 1;
  const out = new Uint8Array(Math.floor((data * 6) / 8));
  let o = 0;
  let i = 0;
  for (; i + 4 <= data; i += 4) {
    const a = BASE64_DECODE[src[i]!]!;
    const b = BASE64_DECODE[src[i + 1]!]!;
    const c = BASE64_DECODE[src[i + 2]!]!;
    const d = BASE64_DECODE[src[i + 3]!]!;
    if ((a | b | c | d) < 0) return undefined;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  if (i < data) {
    // Two or three data characters before the padding; their low bits past the last byte are dropped.
    const a = BASE64_DECODE[src[i]!]!;
    const b = BASE64_DECODE[src[i + 1]!]!;
    const c = data - i === 3 ? BASE64_DECODE[src[i + 2]!]! : 0;
    if ((a | b | c) < 0) return undefined;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o++] = v >> 16;
    if (data - i === 3) out[o++] = (v >> 8) & 0xff;
  }
  return out;
}

/** `json.Marshal` of a []byte: standard padded base64 in quotes. */
export function quoteBase64(bytes: Uint8Array): string {
  return `"${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}"`;
}

/**
 * proto3 JSON exactly as etcd 3.4's gateway speaks it: grpc-gateway's `JSONPb{OrigName: true}` marshaler on
 * top of golang/protobuf 1.3.5's `jsonpb` (the versions the etcd 3.4.23 binary is built with), with etcd's
 * gogo-generated Go types underneath.
 *
 * Output (`encodeMessage`): proto field names, fields in declaration order (a oneof at the place of its
 * declaration), zero scalars, empty lists and absent messages left out, int64/uint64 as quoted decimals,
 * enums by name (an unknown number as a bare number), bytes as padded standard base64, strings escaped as
 * Go's `json.Marshal` does (HTML-safe), no whitespace.
 *
 * Input (`decodeMessage`): either the proto name or the lowerCamel JSON name (the JSON name wins if both are
 * given), unknown fields ignored, `null` leaves a field unset, integers as numbers or quoted numbers, enums
 * by name (quoted) or number, bytes as base64 or as an array of byte values. Errors carry golang/protobuf's
 * and Go's `encoding/json` exact texts, e.g. `json: cannot unmarshal number 1.5 into Go value of type int64`
 * or `unknown value "NOPE" for enum etcdserverpb.RangeRequest_SortOrder`.
 */
import { create, ScalarType, type DescEnum, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { GatewayError, isGatewayError } from "./errors.js";
import {
  JsonValueStream,
  checkValid,
  decodeBase64Go,
  goQuote,
  parseJson,
  parseJsonSteps,
  runToEnd,
  quoteBase64,
  quoteGoString,
  unquoteBytes,
  unquoteString,
  type JsonNode,
} from "./go-json.js";

type Fields = Record<string, unknown>;

/**
 * Decodes one JSON value (the bytes `json.Decoder` split off the request body) into a message of `schema`.
 * Throws GatewayError `JsonPb`.
 */
export function decodeMessage(schema: DescMessage, json: Uint8Array): Message {
  return runToEnd(decodeMessageSteps(schema, json, false));
}

/**
 * `decodeMessage` in steps (see `parseJsonSteps`): pauses every few thousand JSON values and messages, so
 * a large body can be decoded across several turns of the event loop. `validated`: the bytes came from a
 * JsonValueStream, which has checked their syntax already.
 */
export function* decodeMessageSteps(schema: DescMessage, json: Uint8Array, validated: boolean): Generator<void, Message, void> {
  let node: JsonNode;
  try {
    node = yield* parseJsonSteps(json, validated);
  } catch (error) {
    throw toJsonPbError(error);
  }
  const message = create(schema);
  try {
    yield* decodeTree(schema, message, node);
  } catch (error) {
    throw toJsonPbError(error);
  }
  return message;
}

/** Values below this size are decoded at once; larger ones in slices (`decodeMessageSliced`). */
const SLICED_FROM_BYTES = 64 * 1024;
/** The longest a slice of decoding keeps the event loop. */
const SLICE_MS = 4;

/**
 * Decodes a value a JsonValueStream took, in slices of a few milliseconds with the event loop let go in
 * between, so a large body (a long array, thousands of txn ops) does not stall every other request while
 * it is decoded. Small values are decoded at once. Rejects with GatewayError `JsonPb`.
 */
export async function decodeMessageSliced(schema: DescMessage, json: Uint8Array): Promise<Message> {
  const steps = decodeMessageSteps(schema, json, true);
  if (json.length < SLICED_FROM_BYTES) return runToEnd(steps);
  let deadline = performance.now() + SLICE_MS;
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (performance.now() >= deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      deadline = performance.now() + SLICE_MS;
    }
  }
}

/**
 * A unary request body as grpc-gateway reads it: `json.Decoder.Decode` of the first value (anything after
 * it is ignored), an empty or all-space body being an empty request. Throws GatewayError `JsonPb`.
 */
export function decodeFirstMessage(schema: DescMessage, body: Uint8Array): Message {
  const decoder = new JsonValueStream();
  decoder.push(body);
  decoder.finish();
  let value: ReturnType<JsonValueStream["next"]>;
  try {
    value = decoder.next();
  } catch (error) {
    throw toJsonPbError(error);
  }
  if (value === undefined || !(value instanceof Uint8Array)) return create(schema);
  return decodeMessage(schema, value);
}

/** A body golang/protobuf's jsonpb would refuse: GatewayError `JsonPb`, its message jsonpb's exact text. */
function toJsonPbError(error: unknown): GatewayError {
  if (isGatewayError(error, "JsonPb")) return error;
  if (isGatewayError(error, "JsonSyntax")) return new GatewayError("JsonPb", error.message);
  throw error;
}

const MAP_TYPE = "map[string]json.RawMessage";
const LIST_TYPE = "[]json.RawMessage";

function typeError(what: string, goType: string): GatewayError {
  return new GatewayError("JsonPb", `json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

/** Go's name of a JSON value's kind in an UnmarshalTypeError (numbers named without their text). */
function kindName(node: JsonNode): string {
  return node.kind === "bool" ? "bool" : node.kind;
}

/** A message field still to decode: one level of jsonpb's recursion, as a value. */
interface NestedMessage {
  readonly schema: DescMessage;
  readonly message: Fields;
  readonly node: JsonNode;
}

/** Yielded by a decoding that has done a good amount of work in one go (a long list): a place to pause. */
const PAUSE = undefined;

/** Decodes one message; yields each nested message it meets and resumes once that one is decoded. */
type MessageDecoding = Generator<NestedMessage | typeof PAUSE, void, void>;

/** How many messages or list items are decoded between two pauses. */
const ITEMS_PER_STEP = 2048;

/**
 * jsonpb's recursive descent with the recursion on the heap: each message is a suspended `decodeInto`
 * on an explicit stack, so a deeply nested request (a txn inside a txn, thousands deep) cannot exhaust
 * the call stack. Messages are visited in the same depth-first order, so the first error is the same.
 * Pauses (yields) every few thousand messages.
 */
function* decodeTree(schema: DescMessage, message: Fields, node: JsonNode): Generator<void, void, void> {
  const stack: MessageDecoding[] = [decodeInto(schema, message, node)];
  let budget = ITEMS_PER_STEP;
  while (stack.length > 0) {
    const step = stack[stack.length - 1]!.next();
    if (--budget === 0 || (step.done !== true && step.value === PAUSE)) {
      budget = ITEMS_PER_STEP;
      yield;
    }
    if (step.done === true) stack.pop();
    else if (step.value !== PAUSE) stack.push(decodeInto(step.value.schema, step.value.message, step.value.node));
  }
}

/** jsonpb's struct case: json.Unmarshal into map[string]json.RawMessage, then field by field. */
function* decodeInto(schema: DescMessage, message: Fields, node: JsonNode): MessageDecoding {
  if (node.kind === "null") return;
  if (node.kind !== "object") throw typeError(kindName(node), MAP_TYPE);
  const entries = new Map(node.entries);
  const consume = (field: DescField): JsonNode | undefined => {
    const orig = entries.get(field.name);
    const camel = entries.get(field.jsonName);
    entries.delete(field.name);
    entries.delete(field.jsonName);
    return camel ?? orig;
  };
  // Regular fields in declaration order first, then oneof members, as jsonpb does.
  for (const field of schema.fields) {
    if (field.oneof !== undefined) continue;
    const value = consume(field);
    if (value !== undefined) yield* decodeField(field, message, value);
  }
  for (const oneof of schema.oneofs) {
    for (const field of oneof.fields) {
      const value = consume(field);
      if (value === undefined) continue;
      if (field.fieldKind === "message" && value.kind === "null") {
        // jsonpb sets a wrapper holding a nil message, which goes on the wire as nothing at all.
        message[oneof.localName] = { case: undefined };
        continue;
      }
      // A scalar member given as `null` is still selected, with its zero value (the wrapper is set).
      const holder: Fields = {};
      yield* decodeField(field, holder, value);
      message[oneof.localName] = { case: field.localName, value: holder[field.localName] ?? defaultScalar(field) };
    }
  }
}

function defaultScalar(field: DescField): unknown {
  if (field.fieldKind === "enum") return 0;
  if (field.fieldKind !== "scalar") return undefined;
  return zeroOf(field.scalar);
}

function zeroOf(scalar: ScalarType): unknown {
  switch (scalar) {
    case ScalarType.BOOL:
      return false;
    case ScalarType.STRING:
      return "";
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 0n;
    default:
      return 0;
  }
}

function* decodeField(field: DescField, message: Fields, node: JsonNode): MessageDecoding {
  switch (field.fieldKind) {
    case "message":
      if (node.kind === "null") return; // a nil pointer stays nil
      message[field.localName] = create(field.message);
      yield { schema: field.message, message: message[field.localName] as Fields, node };
      return;
    case "list": {
      if (node.kind === "null") return;
      if (node.kind !== "array") throw typeError(kindName(node), LIST_TYPE);
      const list: unknown[] = [];
      let budget = ITEMS_PER_STEP;
      for (const item of node.items) {
        if (--budget === 0) {
          budget = ITEMS_PER_STEP;
          yield PAUSE;
        }
        if (field.listKind === "message") {
          const element: Fields = create(field.message);
          yield { schema: field.message, message: element, node: item };
          list.push(element);
        } else if (field.listKind === "enum") {
          list.push(decodeEnum(field.enum, item) ?? 0);
        } else {
          list.push(decodeScalar(field.scalar, item) ?? zeroOf(field.scalar));
        }
      }
      message[field.localName] = list;
      return;
    }
    case "enum": {
      const value = decodeEnum(field.enum, node);
      if (value !== undefined) message[field.localName] = value;
      return;
    }
    case "scalar": {
      const value =
        field.scalar === ScalarType.BYTES && node.kind === "array" ? yield* decodeByteArray(node.items) : decodeScalar(field.scalar, node);
      if (value !== undefined) message[field.localName] = value;
      return;
    }
    case "map":
      // etcd's API has no map fields.
      throw new GatewayError("JsonPb", `map field ${field.name} is not supported`);
  }
}

/**
 * The Go type name of an etcd enum as the gogo-generated code spells it, which is what jsonpb prints:
 * `etcdserverpb.RangeRequest.SortOrder` is the Go type `etcdserverpb.RangeRequest_SortOrder`.
 */
export function goEnumTypeName(desc: DescEnum): string {
  const pkg = desc.file.proto.package;
  const local = pkg !== "" && desc.typeName.startsWith(`${pkg}.`) ? desc.typeName.slice(pkg.length + 1) : desc.typeName;
  return pkg === "" ? local.replaceAll(".", "_") : `${pkg}.${local.replaceAll(".", "_")}`;
}

/** An enum by name (the raw text between the quotes, unescaped as jsonpb does not unescape) or by number. */
function decodeEnum(desc: DescEnum, node: JsonNode): number | undefined {
  if (node.kind === "string") {
    const inner = node.raw.subarray(1, node.raw.length - 1);
    const name = new TextDecoder().decode(inner);
    const value = desc.values.find((v) => v.name === name);
    if (value === undefined) throw new GatewayError("JsonPb", `unknown value ${goQuote(inner)} for enum ${goEnumTypeName(desc)}`);
    return value.number;
  }
  return decodeInteger(node, goEnumTypeName(desc), -(2n ** 31n), 2n ** 31n - 1n) as number | undefined;
}

/** json.Unmarshal of a number into a Go integer: ParseInt/ParseUint of the literal text, then a range check. */
function decodeInteger(node: JsonNode, goType: string, min: bigint, max: bigint): bigint | number | undefined {
  switch (node.kind) {
    case "null":
      return undefined;
    case "number": {
      const raw = node.raw;
      const small = smallInteger(raw);
      if (small !== undefined && small >= Number(min) && small <= Number(max)) return max > 2n ** 32n ? BigInt(small) : small;
      const text = new TextDecoder().decode(raw);
      // ParseInt of more than 20 digits overflows every integer type; BigInt would take long to say so.
      const value = raw.length <= 21 && /^-?[0-9]+$/.test(text) ? BigInt(text) : undefined;
      if (value === undefined || value < min || value > max) throw typeError(`number ${text}`, goType);
      return max > 2n ** 32n ? value : Number(value);
    }
    default:
      throw typeError(kindName(node), goType);
  }
}

/** An integer literal of at most 15 digits as a number (exact), or undefined for anything else. */
function smallInteger(raw: Uint8Array): number | undefined {
  const negative = raw[0] === 0x2d;
  const first = negative ? 1 : 0;
  if (raw.length === first || raw.length - first > 15) return undefined;
  let value = 0;
  for (let i = first; i < raw.length; i++) {
    const digit = raw[i]! - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

const INTEGER_RANGES: Partial<Record<ScalarType, [string, bigint, bigint]>> = {
  [ScalarType.INT32]: ["int32", -(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: ["int32", -(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: ["int32", -(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: ["uint32", 0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: ["uint32", 0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: ["int64", -(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: ["int64", -(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: ["int64", -(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: ["uint64", 0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: ["uint64", 0n, 2n ** 64n - 1n],
};

function decodeScalar(scalar: ScalarType, node: JsonNode): unknown {
  const integer = INTEGER_RANGES[scalar];
  if (integer !== undefined) {
    const [goType, min, max] = integer;
    let target = node;
    if (node.kind === "string") {
      // jsonpb strips the quotes of a quoted number without unescaping, then json.Unmarshal's the rest.
      const inner = node.raw.subarray(1, node.raw.length - 1);
      checkValid(inner);
      target = parseJson(inner);
    }
    const value = decodeInteger(target, goType, min, max);
    if (value === undefined) return undefined;
    return max > 2n ** 32n ? BigInt(value) : Number(value);
  }
  switch (scalar) {
    case ScalarType.BOOL:
      if (node.kind === "null") return undefined;
      if (node.kind !== "bool") throw typeError(kindName(node), "bool");
      return node.value;
    case ScalarType.STRING:
      if (node.kind === "null") return undefined;
      if (node.kind !== "string") throw typeError(kindName(node), "string");
      return unquoteString(node.raw);
    case ScalarType.BYTES:
      return decodeBytes(node);
    default:
      // etcd's API has no float or double fields.
      throw new GatewayError("JsonPb", `scalar type ${scalar} is not supported`);
  }
}

/** json.Unmarshal into []byte: a base64 string, or an array of numbers 0–255. */
function decodeBytes(node: JsonNode): Uint8Array | undefined {
  switch (node.kind) {
    case "null":
      return undefined;
    case "string":
      return decodeBase64Go(unquoteBytes(node.raw));
    case "array":
      return runToEnd(decodeByteArray(node.items));
    default:
      throw typeError(kindName(node), "[]uint8");
  }
}

/** `[]byte` from an array of numbers 0–255 (`null` items are 0), pausing along a long array. */
function* decodeByteArray(items: readonly JsonNode[]): Generator<typeof PAUSE, Uint8Array, void> {
  const out = new Uint8Array(items.length);
  for (let i = 0; i < items.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield PAUSE;
    const value = decodeInteger(items[i]!, "uint8", 0n, 255n);
    out[i] = value === undefined ? 0 : Number(value);
  }
  return out;
}

/** Encodes a message as jsonpb does with OrigName and without EmitDefaults. */
export function encodeMessage(schema: DescMessage, message: Message): string {
  const fields: Fields = message;
  const parts: string[] = [];
  for (const member of schema.members) {
    if (member.kind === "oneof") {
      const selected = fields[member.localName] as { case: string | undefined; value?: unknown } | undefined;
      if (selected?.case === undefined) continue;
      const field = member.fields.find((f) => f.localName === selected.case);
      if (field === undefined) continue;
      // A set oneof member is written even when its value is the zero value.
      parts.push(`${quoteGoString(field.name)}:${encodeSingular(field, selected.value)}`);
      continue;
    }
    const field = member;
    const value = fields[field.localName];
    if (!isPopulated(field, value)) continue;
    parts.push(`${quoteGoString(field.name)}:${encodeField(field, value)}`);
  }
  return `{${parts.join(",")}}`;
}

function isPopulated(field: DescField, value: unknown): boolean {
  switch (field.fieldKind) {
    case "message":
      return value !== undefined;
    case "list":
      return Array.isArray(value) && value.length > 0;
    case "map":
      return value !== undefined && Object.keys(value as object).length > 0;
    case "enum":
      return value !== 0 && value !== undefined;
    case "scalar":
      if (value instanceof Uint8Array) return value.length > 0;
      if (typeof value === "bigint") return value !== 0n;
      if (typeof value === "number") return value !== 0;
      if (typeof value === "string") return value.length > 0;
      return value === true;
  }
}

function encodeField(field: DescField, value: unknown): string {
  if (field.fieldKind === "list") {
    const items = value as unknown[];
    if (field.listKind === "message") return `[${items.map((v) => encodeMessage(field.message, v as Message)).join(",")}]`;
    if (field.listKind === "enum") return `[${items.map((v) => encodeEnum(field.enum, v as number)).join(",")}]`;
    return `[${items.map((v) => encodeScalar(field.scalar, v)).join(",")}]`;
  }
  return encodeSingular(field, value);
}

function encodeSingular(field: DescField, value: unknown): string {
  switch (field.fieldKind) {
    case "message":
      return encodeMessage(field.message, value as Message);
    case "enum":
      return encodeEnum(field.enum, value as number);
    case "scalar":
      return encodeScalar(field.scalar, value);
    default:
      return encodeField(field, value);
  }
}

function encodeEnum(desc: DescEnum, value: number): string {
  const known = desc.values.find((v) => v.number === value);
  return known === undefined ? String(value) : `"${known.name}"`;
}

function encodeScalar(scalar: ScalarType, value: unknown): string {
  switch (scalar) {
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return `"${String(value)}"`;
    case ScalarType.STRING:
      return quoteGoString(value as string);
    case ScalarType.BYTES:
      return quoteBase64(value as Uint8Array);
    case ScalarType.BOOL:
      return value === true ? "true" : "false";
    default:
      return String(value);
  }
}

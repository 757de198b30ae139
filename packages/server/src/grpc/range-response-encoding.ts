import { toBinary } from "@bufbuild/protobuf";
import { RangeResponseSchema, ResponseHeaderSchema, type KeyValue, type RangeResponse } from "@etcd-ts/api";
import {
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
  bytesFieldSize,
  int64FieldSize,
  varint32Size,
  varint64Size,
  writeBytesField,
  writeInt64Field,
  writeTrue,
  writeUintField,
  writeVarint32,
  writeVarint64,
} from "../wire-writing.js";

/**
 * A Range response's bytes: `toBinary(RangeResponseSchema, response)`, exactly. The key-values, which are
 * nearly all of a response and all of a large one, are written straight into one buffer of the final
 * size; protobuf-es' reflective writer costs several times more per key-value and copies a large response
 * several times over as its buffer grows. Anything the fast path does not cover (unknown fields, a
 * revision beyond 2^53) goes to protobuf-es. A response `encodeRangeResponseInSteps` encoded is handed
 * back as it was encoded.
 */
export function encodeRangeResponse(response: RangeResponse): Buffer {
  const encoded = encodedInSteps.get(response);
  if (encoded !== undefined) {
    encodedInSteps.delete(response);
    return encoded;
  }
  const layout = measure(response);
  if (layout === undefined) return reflective(response);
  let pos = writeHead(layout);
  pos = writeKeyValues(layout, pos, 0, response.kvs.length);
  return finish(layout, pos);
}

/**
 * Encodes a large response in steps of `kvsPerStep` key-values with the event loop let go between them,
 * so that hundreds of megabytes are not written in one stretch that stalls every other client (and the
 * HTTP/2 pings of every connection). `encodeRangeResponse` then returns these bytes for this response.
 * The response must not change until it has been sent.
 */
export async function encodeRangeResponseInSteps(response: RangeResponse, kvsPerStep = 20_000): Promise<void> {
  if (response.kvs.length <= kvsPerStep) return;
  const layout = measure(response);
  if (layout === undefined) return;
  let pos = writeHead(layout);
  for (let from = 0; from < response.kvs.length; from += kvsPerStep) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    pos = writeKeyValues(layout, pos, from, Math.min(response.kvs.length, from + kvsPerStep));
  }
  encodedInSteps.set(response, finish(layout, pos));
}

const encodedInSteps = new WeakMap<RangeResponse, Buffer>();

/** A response measured for the fast path: its buffer, header bytes and each key-value's size. */
interface Layout {
  response: RangeResponse;
  out: Buffer;
  header: Uint8Array | undefined;
  sizes: Int32Array;
}

/** Measures the response and allocates its buffer; undefined when the fast path cannot write it. */
function measure(response: RangeResponse): Layout | undefined {
  if (response.$unknown !== undefined) return undefined;
  const kvs = response.kvs;
  const sizes = kvs.length > 0 ? new Int32Array(kvs.length) : EMPTY_SIZES;
  let size = 0;
  const header = response.header === undefined ? undefined : toBinary(ResponseHeaderSchema, response.header);
  if (header !== undefined) size += 1 + varint32Size(header.byteLength) + header.byteLength;
  for (let i = 0; i < kvs.length; i++) {
    const kvSize = keyValueSize(kvs[i]!);
    if (kvSize < 0) return undefined;
    sizes[i] = kvSize;
    size += 1 + varint32Size(kvSize) + kvSize;
  }
  if (response.more) size += 2;
  if (response.count !== 0n) size += 1 + varint64Size(BigInt.asUintN(64, response.count));
  return { response, out: Buffer.allocUnsafe(size), header, sizes };
}

// Fields in field-number order, as protobuf-es writes them: header (1), kvs (2), more (3), count (4).

function writeHead({ out, header }: Layout): number {
  let pos = 0;
  if (header !== undefined) {
    out[pos++] = (1 << 3) | WIRE_LENGTH_DELIMITED;
    pos = writeVarint32(out, pos, header.byteLength);
    out.set(header, pos);
    pos += header.byteLength;
  }
  return pos;
}

function writeKeyValues({ out, sizes, response }: Layout, start: number, from: number, to: number): number {
  let pos = start;
  const kvs = response.kvs;
  for (let i = from; i < to; i++) {
    out[pos++] = (2 << 3) | WIRE_LENGTH_DELIMITED;
    pos = writeVarint32(out, pos, sizes[i]!);
    pos = writeKeyValue(out, pos, kvs[i]!);
  }
  return pos;
}

function finish({ out, response }: Layout, start: number): Buffer {
  let pos = start;
  if (response.more) pos = writeTrue(out, pos, 3);
  if (response.count !== 0n) {
    out[pos++] = (4 << 3) | WIRE_VARINT;
    pos = writeVarint64(out, pos, BigInt.asUintN(64, response.count));
  }
  if (pos !== out.length) throw new Error(`a range response encoded to ${pos} bytes, not the ${out.length} measured`);
  return out;
}

const EMPTY_SIZES = new Int32Array(0);

function reflective(response: RangeResponse): Buffer {
  const bytes = toBinary(RangeResponseSchema, response);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A revision or version the fast path writes as a plain number, or -1 when it cannot. */
function smallInt64(value: bigint): number {
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

// KeyValue: key = 1 (bytes), create_revision = 2, mod_revision = 3, version = 4 (int64), value = 5
// (bytes), lease = 6 (int64); implicit presence, so zero values are not written.

/** The encoded size of a key-value, or -1 if the fast path cannot write it. */
function keyValueSize(kv: KeyValue): number {
  if (kv.$unknown !== undefined) return -1;
  const create = smallInt64(kv.createRevision);
  const mod = smallInt64(kv.modRevision);
  const version = smallInt64(kv.version);
  if (create < 0 || mod < 0 || version < 0) return -1;
  let size = bytesFieldSize(kv.key) + bytesFieldSize(kv.value) + int64FieldSize(kv.lease);
  if (create !== 0) size += 1 + varint32Size(create);
  if (mod !== 0) size += 1 + varint32Size(mod);
  if (version !== 0) size += 1 + varint32Size(version);
  return size;
}

function writeKeyValue(out: Uint8Array, start: number, kv: KeyValue): number {
  let pos = writeBytesField(out, start, 1, kv.key);
  pos = writeUintField(out, pos, 2, Number(kv.createRevision));
  pos = writeUintField(out, pos, 3, Number(kv.modRevision));
  pos = writeUintField(out, pos, 4, Number(kv.version));
  pos = writeBytesField(out, pos, 5, kv.value);
  return writeInt64Field(out, pos, 6, kv.lease);
}

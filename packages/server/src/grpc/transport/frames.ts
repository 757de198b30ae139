/**
 * HTTP/2 frame layout (RFC 9113 §4, §6) and the few header blocks a gRPC server sends. Response header
 * blocks use only static-table indexes and literals "without indexing", so the peer's decoder table is
 * never touched and every block is a constant or built from a constant prefix.
 */

export const FRAME_HEADER_BYTES = 9;

export const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  Priority: 0x2,
  RstStream: 0x3,
  Settings: 0x4,
  PushPromise: 0x5,
  Ping: 0x6,
  Goaway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

export const Flag = {
  EndStream: 0x1,
  Ack: 0x1,
  EndHeaders: 0x4,
  Padded: 0x8,
  Priority: 0x20,
} as const;

export const Setting = {
  HeaderTableSize: 0x1,
  EnablePush: 0x2,
  MaxConcurrentStreams: 0x3,
  InitialWindowSize: 0x4,
  MaxFrameSize: 0x5,
  MaxHeaderListSize: 0x6,
} as const;

export enum ErrorCode {
  NoError = 0x0,
  ProtocolError = 0x1,
  InternalError = 0x2,
  FlowControlError = 0x3,
  StreamClosed = 0x5,
  FrameSizeError = 0x6,
  RefusedStream = 0x7,
  Cancel = 0x8,
  CompressionError = 0x9,
  EnhanceYourCalm = 0xb,
}

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const DEFAULT_WINDOW_SIZE = 65_535;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_WINDOW_SIZE = 2 ** 31 - 1;

/** Writes a frame header at `offset` of `target`. */
export function writeFrameHeader(target: Buffer, offset: number, length: number, type: number, flags: number, streamId: number): void {
  target[offset] = length >>> 16;
  target[offset + 1] = (length >>> 8) & 0xff;
  target[offset + 2] = length & 0xff;
  target[offset + 3] = type;
  target[offset + 4] = flags;
  target.writeUInt32BE(streamId, offset + 5);
}

/** A whole frame whose payload is `payload`. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

const EMPTY = new Uint8Array(0);

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, FrameType.WindowUpdate, 0, streamId);
  out.writeUInt32BE(increment, FRAME_HEADER_BYTES);
  return out;
}

export function rstStreamFrame(streamId: number, code: ErrorCode): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, FrameType.RstStream, 0, streamId);
  out.writeUInt32BE(code, FRAME_HEADER_BYTES);
  return out;
}

export function goawayFrame(lastStreamId: number, code: ErrorCode, debug = ""): Buffer {
  const debugBytes = Buffer.from(debug, "utf8");
  const payload = Buffer.allocUnsafe(8 + debugBytes.length);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  debugBytes.copy(payload, 8);
  return frame(FrameType.Goaway, 0, 0, payload);
}

export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(FrameType.Settings, 0, 0, payload);
}

export const SETTINGS_ACK = frame(FrameType.Settings, Flag.Ack, 0);

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1) appended to `out`, the first byte OR-ed with `high`. */
function pushInteger(out: number[], value: number, prefixBits: number, high: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(high | value);
    return;
  }
  out.push(high | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/** A header field as a literal without indexing, with a new (literal) name. */
function literalField(name: string, value: string): Buffer {
  const head: number[] = [0x00];
  pushInteger(head, name.length, 7, 0);
  const valueBytes = Buffer.from(value, "latin1");
  const nameBytes = Buffer.from(name, "latin1");
  const lengthBytes: number[] = [];
  pushInteger(lengthBytes, valueBytes.length, 7, 0);
  return Buffer.concat([Buffer.from(head), nameBytes, Buffer.from(lengthBytes), valueBytes]);
}

/** `:status: 200` (static index 8) and `content-type: application/grpc` (static name 31, literal value). */
export const RESPONSE_HEADERS_BLOCK = Buffer.concat([
  Buffer.from([0x88, 0x0f, 0x10, "application/grpc".length]),
  Buffer.from("application/grpc", "latin1"),
]);

/** The trailers block of a status: `grpc-status` and, when there is one, `grpc-message` (percent-encoded). */
export function statusBlock(code: number, message: string): Buffer {
  const fields = [literalField("grpc-status", String(code))];
  if (message !== "") fields.push(literalField("grpc-message", percentEncode(message)));
  return Buffer.concat(fields);
}

export const OK_TRAILERS_BLOCK = statusBlock(0, "");

/**
 * gRPC's percent-encoding of grpc-message: the message's UTF-8 bytes, with `%` and every byte outside
 * printable ASCII written as %XX.
 */
export function percentEncode(message: string): string {
  const bytes = Buffer.from(message, "utf8");
  let out = "";
  for (const b of bytes) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b);
  }
  return out;
}

/**
 * Byte strings as JS strings of one char per byte (latin1). The key index holds user keys this way: a
 * `Map` lookup of such a string costs a fraction of a bytewise search, and comparing two such strings
 * with `<` is native and gives exactly the bytewise order of the bytes.
 */

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
// Buffer's native latin1 decoder; it accepts any Uint8Array as `this`.
const nativeLatin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;

export function latin1String(bytes: Uint8Array): string {
  if (nativeLatin1Slice !== undefined) return nativeLatin1Slice.call(bytes, 0, bytes.length);
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** The bytes of a string made by `latin1String` (a fresh array the caller owns). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The `ID` (field 1, a varint) of an encoded `InternalRaftRequest`, read without decoding the request.
 * Members write the header (field 100) before it, so the first two fields are looked at; undefined when
 * the ID is not among them or the bytes are not well formed there.
 */
export function peekRequestId(data: Uint8Array): bigint | undefined {
  let pos = 0;
  for (let field = 0; field < 2; field++) {
    // The tag: a field number and a wire type, at most 5 bytes.
    let tag = 0;
    let byte = 0x80;
    for (let shift = 0; byte & 0x80; shift += 7) {
      if (pos >= data.length || shift > 28) return undefined;
      byte = data[pos++]!;
      tag += (byte & 0x7f) * 2 ** shift;
    }
    const wireType = tag % 8;
    const fieldNumber = Math.floor(tag / 8);
    if (wireType === 0) {
      // A varint of up to 10 bytes; 7 bits at a time in numbers, joined in one bigint.
      let low = 0;
      let high = 0;
      byte = 0x80;
      for (let shift = 0; byte & 0x80; shift += 7) {
        if (pos >= data.length || shift > 63) return undefined;
        byte = data[pos++]!;
        if (shift < 35) low += (byte & 0x7f) * 2 ** shift;
        else high += (byte & 0x7f) * 2 ** (shift - 35);
      }
      if (fieldNumber === 1) return BigInt.asUintN(64, BigInt(low) + (BigInt(high) << 35n));
    } else if (wireType === 2) {
      let length = 0;
      byte = 0x80;
      for (let shift = 0; byte & 0x80; shift += 7) {
        if (pos >= data.length || shift > 28) return undefined;
        byte = data[pos++]!;
        length += (byte & 0x7f) * 2 ** shift;
      }
      pos += length;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** Whether `a` and `b` hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

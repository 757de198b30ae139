/** Keys and values shared by the durability test and its child process. */
export const durabilityBucket = "durability";

export function durabilityKey(i: number): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, BigInt(i));
  return key;
}

export function durabilityValue(i: number): Uint8Array {
  return new TextEncoder().encode(`value-${i}-`.padEnd(100, "x"));
}

import { toBinary } from "@bufbuild/protobuf";
import { EventSchema, WatchResponseSchema } from "@etcd-ts/api";
import type { WatchResponse } from "@etcd-ts/api";

/** etcd's default limit: --max-request-bytes (1.5 MiB) plus gRPC overhead (512 KiB). */
export const DEFAULT_MAX_RESPONSE_BYTES = 1.5 * 1024 * 1024 + 512 * 1024;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * Splits `response` as etcd's sendFragments does: unchanged when its encoded size is below `maxBytes` or
 * it has fewer than two events; otherwise into consecutive responses that each carry as many events as
 * fit below `maxBytes` (at least one), all with `fragment: true` except the last. Every part keeps the
 * header, watch ID and the other fields. A client reassembles the parts; no event is split.
 */
export function fragmentResponse(response: WatchResponse, maxBytes: number): WatchResponse[] {
  const events = response.events;
  if (events.length < 2) return [response];
  // The encoded size of a response is its fields without events plus, per event, a tag byte, the length
  // varint and the event: summed here instead of re-encoding each candidate as etcd does.
  const eventSizes = events.map((e) => {
    const n = toBinary(EventSchema, e).length;
    return 1 + varintSize(n) + n;
  });
  const base = toBinary(WatchResponseSchema, { ...response, events: [], fragment: false }).length;
  const total = eventSizes.reduce((a, b) => a + b, base);
  if (total < maxBytes) return [response];
  // While packing, the part carries `fragment: true` (2 bytes), as etcd measures it.
  const fragmentBase = base + 2;
  const parts: WatchResponse[] = [];
  let i = 0;
  while (i < events.length) {
    let size = fragmentBase + eventSizes[i]!;
    let j = i + 1;
    while (j < events.length && size + eventSizes[j]! < maxBytes) {
      size += eventSizes[j]!;
      j++;
    }
    parts.push({ ...response, events: events.slice(i, j), fragment: j < events.length });
    i = j;
  }
  return parts;
}

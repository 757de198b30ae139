import { Event_EventType, type Event, type WatchResponse } from "@etcd-ts/api";
import type { StoreWatchResponse, WatchConsumer } from "../watcher.js";

const dec = new TextDecoder();

/** "PUT key=value@rev" / "DELETE key@rev" (with " prev=value" when prevKv is set): readable assertions. */
export function describeEvent(e: Event): string {
  const kv = e.kv!;
  const key = dec.decode(kv.key);
  const prev = e.prevKv === undefined ? "" : ` prev=${dec.decode(e.prevKv.value)}`;
  return e.type === Event_EventType.PUT
    ? `PUT ${key}=${dec.decode(kv.value)}@${kv.modRevision}${prev}`
    : `DELETE ${key}@${kv.modRevision}${prev}`;
}

/** A response as a short line: "id=0 rev=5 [PUT a=1@5, …]" plus flags. */
export function describeResponse(r: WatchResponse): string {
  const flags = [
    r.created ? "created" : "",
    r.canceled ? "canceled" : "",
    r.fragment ? "fragment" : "",
    r.compactRevision !== 0n ? `compact=${r.compactRevision}` : "",
    r.cancelReason !== "" ? `reason=${r.cancelReason}` : "",
  ].filter((f) => f !== "");
  const events = r.events.length > 0 ? ` [${r.events.map(describeEvent).join(", ")}]` : "";
  return `id=${r.watchId} rev=${r.header?.revision ?? "-"}${flags.length > 0 ? " " + flags.join(" ") : ""}${events}`;
}

/** A `WatchConsumer` for store tests: records responses; `capacity` bounds what it holds until `drain`. */
export class RecordingConsumer implements WatchConsumer {
  readonly received: StoreWatchResponse[] = [];
  held = 0;
  allSyncedCalls = 0;
  constructor(public capacity = Infinity) {}
  get ready(): boolean {
    return this.held < this.capacity;
  }
  offer(response: StoreWatchResponse): boolean {
    if (this.held >= this.capacity) return false;
    this.held++;
    this.received.push(response);
    return true;
  }
  allSynced(): void {
    this.allSyncedCalls++;
  }
  /** Empties the buffer (the reader caught up); returns what it held since the last drain. */
  drain(): StoreWatchResponse[] {
    const out = this.received.slice(this.received.length - this.held);
    this.held = 0;
    return out;
  }
  /** Every event received so far, described. */
  events(): string[] {
    return this.received.flatMap((r) => r.events.map(describeEvent));
  }
}

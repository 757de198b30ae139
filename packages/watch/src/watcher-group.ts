import { IntervalTree } from "./interval-tree.js";
import { keyString } from "./key-range.js";
import type { Watcher } from "./watcher.js";

/**
 * A set of watchers indexed by what they watch (etcd's watcherGroup): single-key watchers in a map by
 * key, range watchers in an interval tree (watchers with the same range share one interval). Finding
 * the watchers of a key costs a map lookup plus a tree stab, independent of how many watchers watch
 * other keys.
 */
export class WatcherGroup {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new IntervalTree<Set<Watcher>>();
  /** Every watcher of the group, in insertion order. */
  readonly watchers = new Set<Watcher>();

  get size(): number {
    return this.watchers.size;
  }

  has(watcher: Watcher): boolean {
    return this.watchers.has(watcher);
  }

  add(watcher: Watcher): void {
    if (this.watchers.has(watcher)) return;
    this.watchers.add(watcher);
    if (watcher.singleKey !== undefined) {
      const set = this.byKey.get(watcher.singleKey);
      if (set !== undefined) set.add(watcher);
      else this.byKey.set(watcher.singleKey, new Set([watcher]));
      return;
    }
    const { start, end } = watcher.range;
    const bound = end ?? null;
    const set = this.ranges.get(start, bound);
    if (set !== undefined) set.add(watcher);
    else this.ranges.set(start, bound, new Set([watcher]));
  }

  /** Removes `watcher`; returns whether it was in the group. */
  delete(watcher: Watcher): boolean {
    if (!this.watchers.delete(watcher)) return false;
    if (watcher.singleKey !== undefined) {
      const set = this.byKey.get(watcher.singleKey);
      if (set !== undefined) {
        set.delete(watcher);
        if (set.size === 0) this.byKey.delete(watcher.singleKey);
      }
      return true;
    }
    const { start, end } = watcher.range;
    const bound = end ?? null;
    const set = this.ranges.get(start, bound);
    if (set !== undefined) {
      set.delete(watcher);
      if (set.size === 0) this.ranges.delete(start, bound);
    }
    return true;
  }

  /** Removes every watcher. */
  clear(): void {
    this.watchers.clear();
    this.byKey.clear();
    this.ranges.clear();
  }

  /** Calls `visit` for every watcher of the group whose range holds `key`. */
  forEachWatching(key: Uint8Array, visit: (watcher: Watcher) => void): void {
    if (this.byKey.size > 0) {
      const set = this.byKey.get(keyString(key));
      if (set !== undefined) for (const w of set) visit(w);
    }
    if (this.ranges.size > 0) {
      this.ranges.stab(key, (set) => {
        for (const w of set) visit(w);
      });
    }
  }
}

import type { AuthStore } from "@etcd-ts/auth";
import type { Lessor } from "@etcd-ts/lease";
import { MvccStore } from "@etcd-ts/mvcc";
import { restoreBoltSnapshot } from "@etcd-ts/snapshot";
import type { Backend } from "@etcd-ts/storage";
import { WatchableStore, watchableKVFromMvcc } from "@etcd-ts/watch";
import { createKvApplier } from "./apply/index.js";
import { AlarmApplier, alarmRefusal, type AlarmStore } from "./apply/alarm.js";
import { AuthRequestApplier, authorizeEntry } from "./apply/auth-applier.js";
import { LeaseApplier } from "./apply/lease-applier.js";
import { MemberAttributesApplier } from "./apply/member-attributes-applier.js";
import type { KvApplier } from "./apply/types.js";
import type { Logger } from "./log.js";
import type { Membership } from "./membership/membership.js";

/**
 * What a member's state is built on and lives beside. These outlive every `MemberState`: leases, auth,
 * alarms and membership reload from the backend in place when the state is rebuilt.
 */
export interface MemberStateDeps {
  readonly backend: Backend;
  readonly lessor: Lessor;
  readonly auth: AuthStore;
  readonly alarms: AlarmStore;
  readonly membership: Membership;
  readonly logger: Logger;
}

/**
 * The state a member builds in memory over its backend: the MVCC store, the watchable store every
 * watcher hangs on, and the applier that writes committed entries into them. They are bound to each
 * other (the watchers to this store, the applier to this store), so they are replaced together: when a
 * database from the leader becomes the backend, or after a rolled-back batch left memory ahead of the
 * backend, the old state is closed and a new one opened from the backend — never one part alone.
 */
export class MemberState {
  readonly store: MvccStore;
  /** Every watcher of every client stream, fed by the store's write observer. */
  readonly watchable: WatchableStore;
  readonly applier: KvApplier;

  /** Builds the state around `store`, opened on `deps.backend` with `deps.lessor` as its leases. */
  constructor(deps: MemberStateDeps, store: MvccStore) {
    this.store = store;
    this.watchable = new WatchableStore(watchableKVFromMvcc(store));
    this.applier = createKvApplier(store, {
      leases: deps.lessor,
      requestAppliers: [
        new LeaseApplier(deps.lessor),
        new MemberAttributesApplier(deps.membership),
        new AuthRequestApplier(deps.auth),
        new AlarmApplier(deps.alarms, deps.logger),
      ],
      authorize: authorizeEntry(deps.auth, deps.lessor),
      refuse: (request) => alarmRefusal(deps.alarms, request.request),
    });
  }

  /**
   * Opens the MVCC store on the backend. The store keeps keys attached to their leases (on open, and
   * as puts and deletes apply), so a revoke finds every key to delete in one revision.
   */
  static openStore(backend: Backend, lessor: Lessor): MvccStore {
    return MvccStore.open(backend, { leases: lessor });
  }

  /**
   * Reloads leases, auth and alarms from the backend and builds a new state on it (after the previous
   * one was closed).
   */
  static reload(deps: MemberStateDeps): MemberState {
    deps.lessor.recover(deps.backend);
    deps.backend.view((txn) => deps.auth.recover(txn));
    deps.alarms.restore(deps.backend);
    return new MemberState(deps, MemberState.openStore(deps.backend, deps.lessor));
  }

  /**
   * Makes the database in `file` (etcd's bbolt snapshot format, received from the leader) the backend,
   * reloads the membership it holds and builds a new state on it. The previous state must be closed.
   */
  static async installDatabase(file: string, deps: MemberStateDeps): Promise<{ state: MemberState; keys: number }> {
    const restored = await restoreBoltSnapshot(file, deps.backend);
    await deps.membership.reloadAfterSnapshot(deps.backend);
    // The backend commits deferred updates in batches, and the raft log no longer holds what the received
    // database replaces: it must be on disk before its file is removed.
    await deps.backend.flush();
    return { state: MemberState.reload(deps), keys: restored.keys };
  }

  /** Ends every watcher and closes the store (before the backend under them is reloaded or replaced). */
  close(): void {
    this.watchable.close();
    this.store.close();
  }
}

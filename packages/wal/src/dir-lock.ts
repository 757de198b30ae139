// An advisory lock on a WAL directory, so two members (or two Wals in one process) never append to the
// same log. Node has no flock(), so the lock is a file holding the owner's pid, created with O_EXCL; a
// lock left by a process that no longer exists (kill -9) is stale and taken over. Internal.

import { open, readFile, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { WalError, isWalError, ioFailure } from "./errors.js";

const LOCK_FILE = "wal.lock";
const heldInThisProcess = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class DirLock {
  private constructor(
    private readonly dir: string,
    private readonly path: string,
  ) {}

  /** @throws WalError Locked if a live process (or this one) holds `dir`. */
  static async acquire(dir: string): Promise<DirLock> {
    const abs = resolve(dir);
    if (heldInThisProcess.has(abs)) throw new WalError("Locked", "the WAL is already open in this process", { file: abs });
    // Claimed before the first await, so two concurrent acquires in this process cannot both proceed.
    heldInThisProcess.add(abs);
    const path = join(abs, LOCK_FILE);
    try {
      return await DirLock.take(abs, path);
    } catch (e) {
      heldInThisProcess.delete(abs);
      throw e;
    }
  }

  private static async take(abs: string, path: string): Promise<DirLock> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, "wx");
        try {
          await fh.writeFile(`${process.pid}\n`);
        } finally {
          await fh.close();
        }
        return new DirLock(abs, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
          // A full disk cannot take even the pid: say so, with the file (a partial lock file is removed).
          if (!isWalError(e)) {
            await unlink(path).catch(() => undefined);
            throw ioFailure("taking the WAL lock", path, e);
          }
          throw e;
        }
      }
      const owner = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new WalError("Locked", `the WAL is locked by process ${owner}`, { file: path });
      }
      await unlink(path).catch(() => undefined);
    }
    throw new WalError("Locked", "could not take the WAL lock", { file: path });
  }

  async release(): Promise<void> {
    heldInThisProcess.delete(this.dir);
    await unlink(this.path).catch(() => undefined);
  }
}

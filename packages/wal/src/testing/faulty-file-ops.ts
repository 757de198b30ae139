// File operations that fail on demand, for the WAL's disk-fault tests. Not exported from the package.

import type { FileHandle } from "node:fs/promises";
import { nodeFileOps, type WalFileOps } from "../durable-fs.js";

/** An error shaped as Node's fs errors are (`code`, `errno`, `syscall`). */
export function fsError(code: "EIO" | "ENOSPC", syscall: string): NodeJS.ErrnoException {
  const message = code === "EIO" ? "i/o error" : "no space left on device";
  const error: NodeJS.ErrnoException = new Error(`${code}: ${message}, ${syscall}`);
  error.code = code;
  error.errno = code === "EIO" ? -5 : -28;
  error.syscall = syscall;
  return error;
}

/**
 * The real file operations, with faults armed by the test: the next write (optionally after writing
 * some of its bytes, as a full disk does) or the next fdatasync of a file whose path matches fails.
 * Counts the calls made after a fault, to check that a failed WAL never touches the disk again.
 */
export class FaultyFileOps implements WalFileOps {
  /**
   * `keepToSector`: the bytes up to the next 512-byte boundary reach the file before the error, as when
   * the device takes some sectors (or a file system some blocks) of a write and then fails.
   */
  writeFault: { code: "EIO" | "ENOSPC"; keepToSector?: boolean; path?: RegExp } | undefined;
  syncFault: { code: "EIO" | "ENOSPC"; path?: RegExp } | undefined;
  faults = 0;
  callsAfterFault = 0;

  async write(fh: FileHandle, path: string, bufs: readonly Buffer[], position: number): Promise<number> {
    if (this.faults > 0) this.callsAfterFault++;
    const fault = this.writeFault;
    if (fault !== undefined && (fault.path === undefined || fault.path.test(path))) {
      this.writeFault = undefined;
      this.faults++;
      if (fault.keepToSector === true) {
        const all = Buffer.concat(bufs);
        const keep = Math.min(all.length, 512 - (position % 512));
        await nodeFileOps.write(fh, path, [all.subarray(0, keep)], position);
      }
      throw fsError(fault.code, "write");
    }
    return await nodeFileOps.write(fh, path, bufs, position);
  }

  async datasync(fh: FileHandle, path: string): Promise<void> {
    if (this.faults > 0) this.callsAfterFault++;
    const fault = this.syncFault;
    if (fault !== undefined && (fault.path === undefined || fault.path.test(path))) {
      this.syncFault = undefined;
      this.faults++;
      throw fsError(fault.code, "fdatasync");
    }
    await nodeFileOps.datasync(fh, path);
  }
}

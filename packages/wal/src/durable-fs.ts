import { writevSync } from "node:fs";
// Small durable-file-system steps shared by the WAL and the snapshotter. Internal.

import { open, rename, unlink, type FileHandle } from "node:fs/promises";

/** fsync a directory, so that creations, renames and deletions in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `bufs` at `position`, looping over short writes and bounding the iovec count. */
/**
 * `writeAllAt` on the calling thread: for small writes, which only reach the page cache, a trip through
 * libuv's thread pool costs more than the copy (the fsync that follows is what makes them durable).
 */
export function writeAllAtSync(fd: number, bufs: readonly Buffer[], position: number): number {
  let pos = position;
  let pending = bufs.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let written = writevSync(fd, pending.slice(0, 512), pos);
    pos += written;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (written >= b.length) {
        written -= b.length;
        continue;
      }
      rest.push(written > 0 ? b.subarray(written) : b);
      written = 0;
    }
    pending = rest;
  }
  return pos - position;
}

export async function writeAllAt(fh: FileHandle, bufs: readonly Buffer[], position: number): Promise<number> {
  const MAX_IOV = 512;
  let pos = position;
  for (let i = 0; i < bufs.length; i += MAX_IOV) {
    let batch = bufs.slice(i, i + MAX_IOV);
    let want = 0;
    for (const b of batch) want += b.length;
    while (want > 0) {
      const { bytesWritten } = await fh.writev(batch, pos);
      pos += bytesWritten;
      want -= bytesWritten;
      if (want === 0) break;
      // Short write: drop what was written and go on with the rest.
      let skip = bytesWritten;
      const rest: Buffer[] = [];
      for (const b of batch) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      batch = rest;
    }
  }
  return pos - position;
}

/**
 * The file operations on the WAL's write path: writing records (and the zeros of preallocated segments)
 * and fdatasync. They are the seam where tests inject disk faults (EIO, ENOSPC, short writes); `path`
 * names the file `fh` is open on. A throw (or rejection) fails the WAL.
 */
export interface WalFileOps {
  /** Writes all of `bufs` at `position` (looping over short writes); returns the bytes written. */
  write(fh: FileHandle, path: string, bufs: readonly Buffer[], position: number): number | Promise<number>;
  datasync(fh: FileHandle, path: string): Promise<void>;
}

/** Writes up to this size are made on the main thread (see writeAllAtSync). */
const SYNC_WRITE_MAX_BYTES = 1024 * 1024;

/** The real file system: small writes straight to the page cache, big ones off the main thread. */
export const nodeFileOps: WalFileOps = {
  write(fh, _path, bufs, position) {
    let size = 0;
    for (const b of bufs) size += b.length;
    return size <= SYNC_WRITE_MAX_BYTES ? writeAllAtSync(fh.fd, bufs, position) : writeAllAt(fh, bufs, position);
  },
  datasync(fh) {
    return fh.datasync();
  },
};

/**
 * Writes a file so that after a crash it either does not exist or is complete: write `<path>.tmp`,
 * fdatasync it, rename over `path`, fsync the directory.
 */
export async function writeFileAtomic(dir: string, path: string, bufs: readonly Buffer[]): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w");
  try {
    await writeAllAt(fh, bufs, 0);
    await fh.datasync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dir);
}

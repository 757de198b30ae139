// A small tmpfs for tests that run the disk out of space for real. Not exported from the package.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SmallFileSystem {
  readonly dir: string;
  /** Gives the file system a new size (space returns). */
  resize(bytes: number): void;
  unmount(): void;
}

/** Mounts a tmpfs of `bytes` on a fresh temp dir; without root (or where mount is refused) returns why not. */
export function mountSmallFileSystem(bytes: number): SmallFileSystem | string {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return "mounting a small tmpfs needs root on Linux: test skipped";
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-wal-full-"));
  const mount = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir], { encoding: "utf8" });
  if (mount.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here (${(mount.stderr || String(mount.error)).trim()}): test skipped`;
  }
  return {
    dir,
    resize(size: number) {
      const r = spawnSync("mount", ["-o", `remount,size=${size}`, dir], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`cannot resize the tmpfs at ${dir}: ${r.stderr}`);
    },
    unmount() {
      // Lazily if something still holds a file there (a failed test): never leave the mount behind, and
      // never remove files through a mount that is still up.
      if (spawnSync("umount", [dir]).status !== 0) spawnSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

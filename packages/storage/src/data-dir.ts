/**
 * The data directory every on-disk engine owns, and its marker file. The marker names the engine and the
 * on-disk format, so that opening a directory with the wrong engine, or a directory that is not a store
 * at all, fails with a clear error before anything in it is touched.
 *
 * Life of a directory: missing or empty → the engine writes the marker (atomically: temp file, fsync,
 * rename, fsync of the directory), then creates its database files. A directory that holds the marker and
 * nothing else is therefore an initialisation that was cut short, and is safe to initialise again.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StorageError, isStorageError } from "./backend.js";

export const DATA_DIR_MARKER = "etcd-ts-storage.json";
const MARKER_TEMP = `${DATA_DIR_MARKER}.tmp`;

export interface DataDirMarker {
  readonly engine: string;
  readonly format: number;
}

export interface DataDirState {
  /** True when the directory held no store: the engine must create its files. */
  readonly fresh: boolean;
  /** The names in the directory other than the marker (empty when `fresh`). */
  readonly files: readonly string[];
}

function readMarker(dir: string): DataDirMarker {
  const path = join(dir, DATA_DIR_MARKER);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new StorageError("Corrupt", `data dir ${dir}: cannot read ${DATA_DIR_MARKER}: ${String(e)}`, { cause: e });
  }
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    typeof (parsed as { engine?: unknown }).engine !== "string" ||
    typeof (parsed as { format?: unknown }).format !== "number"
  ) {
    throw new StorageError("Corrupt", `data dir ${dir}: ${DATA_DIR_MARKER} is not {"engine": string, "format": number}`);
  }
  return parsed as DataDirMarker;
}

/**
 * Checks `dir` before an engine opens it, creating it (and writing the marker) when it is missing or
 * empty. Throws `WrongEngine` when another engine's marker is there, and `Corrupt` when the directory has
 * files but no marker, or a marker that cannot be read or names a format this build does not know.
 * Never deletes or changes an existing file.
 */
export function prepareDataDir(dir: string, engine: string, format: number): DataDirState {
  try {
    return inspectDataDir(dir, engine, format);
  } catch (e) {
    if (isStorageError(e)) throw e;
    throw new StorageError("Io", `data dir ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function inspectDataDir(dir: string, engine: string, format: number): DataDirState {
  mkdirSync(dir, { recursive: true });
  // A leftover temp marker is ours (a marker write cut short) and carries no data.
  const names = readdirSync(dir).filter((n) => n !== MARKER_TEMP);
  if (!names.includes(DATA_DIR_MARKER)) {
    if (names.length > 0) {
      const shown = names.slice(0, 5).join(", ") + (names.length > 5 ? ", …" : "");
      throw new StorageError(
        "Corrupt",
        `data dir ${dir} is not an etcd-ts store (it has no ${DATA_DIR_MARKER} but holds ${shown}); refusing to use it`,
      );
    }
    writeDataDirMarker(dir, { engine, format });
    return { fresh: true, files: [] };
  }
  const marker = readMarker(dir);
  if (marker.engine !== engine) {
    throw new StorageError("WrongEngine", `data dir ${dir} was written by the ${marker.engine} storage engine, not ${engine}`);
  }
  if (marker.format !== format) {
    throw new StorageError("Corrupt", `data dir ${dir} holds ${engine} format ${marker.format}; this build reads format ${format} only`);
  }
  const files = names.filter((n) => n !== DATA_DIR_MARKER);
  return { fresh: files.length === 0, files };
}

/** Writes the marker atomically and durably. */
export function writeDataDirMarker(dir: string, marker: DataDirMarker): void {
  const path = join(dir, DATA_DIR_MARKER);
  const temp = join(dir, MARKER_TEMP);
  const fd = openSync(temp, "w");
  try {
    writeFileSync(fd, `${JSON.stringify({ engine: marker.engine, format: marker.format })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  fsyncDir(dir);
}

/** Makes creations, renames and removals of entries in `dir` durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Bytes an unprivileged writer can still use on the file system holding `dir` (statfs' f_bavail), or
 * undefined when it cannot be asked. Engines quote it in `Full` errors, and LMDB's write path uses it to
 * tell a full disk from other I/O errors (LMDB reports a short write as EIO).
 */
export function freeBytes(dir: string): number | undefined {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/** The server's logger: JSON lines on stderr with etcd's level names, like etcd's zap logger. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: string, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[level] ?? 1;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if ((ORDER[lvl] ?? 0) < min) return;
    const entry = { level: lvl, ts: new Date().toISOString(), msg, ...fields };
    write(JSON.stringify(entry, (_k, v: unknown) => (typeof v === "bigint" ? v.toString(16) : v)) + "\n");
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

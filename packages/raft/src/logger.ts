// Logging is injected: the core never writes to the console by itself.

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Discards everything; the default. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Writes info and above to stderr, prefixed; handy while debugging a test. */
export function consoleLogger(prefix = "raft"): Logger {
  return {
    debug() {},
    info: (m) => console.error(`${prefix} INFO ${m}`),
    warn: (m) => console.error(`${prefix} WARN ${m}`),
    error: (m) => console.error(`${prefix} ERROR ${m}`),
  };
}

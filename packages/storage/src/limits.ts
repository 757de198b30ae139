/**
 * The sizes every engine stores, and etcd's snapshot format (bbolt) holds, whatever engine a member
 * runs. A member refuses a request that would need more before it is proposed, so an entry in the log
 * never meets an engine that cannot hold it (it would fail on one engine and not on another, or on
 * every restart again). The conformance suite checks each engine against these numbers.
 */

/**
 * The longest key: LMDB's 1978-byte key limit (lmdb-js's default page size) less the 5-byte bucket
 * prefix of its layout. SQLite and the memory engine take more; bbolt takes 32768.
 */
export const MAX_KEY_BYTES = 1973;

/**
 * The longest value: SQLite's SQLITE_MAX_LENGTH (10^9 bytes per blob, as better-sqlite3 builds it).
 * bbolt takes 2^31 - 2, LMDB 2^32 - 1.
 */
export const MAX_VALUE_BYTES = 1_000_000_000;

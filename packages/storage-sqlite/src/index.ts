export { SqliteBackend, openSqliteBackend } from "./sqlite-backend.js";

export { LmdbBackend, openLmdbBackend } from "./lmdb-backend.js";

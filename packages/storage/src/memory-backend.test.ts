import { runBackendConformance } from "./testing/conformance.js";
import { openMemoryBackend } from "./memory-backend.js";

runBackendConformance("memory", () => openMemoryBackend(), { persistent: false });

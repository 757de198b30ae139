import { defineConfig } from "tsup";

export default defineConfig({
  // conformance-writer is the durability test's child process; the built suite spawns the built file.
  entry: ["src/index.ts", "src/testing/conformance.ts", "src/testing/conformance-writer.ts", "src/benchmark.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
});

// ESLint for every package's src/: typescript-eslint's strict type-checked rules, and the dependency
// arrows of docs/architecture.md as a rule. Formatting is prettier's job (.prettierrc.json): no
// stylistic rules here.
import path from "node:path";
import { readFileSync } from "node:fs";
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

// Which of our packages each package may import — the table in docs/architecture.md; change both
// together. `types` may be imported for types only; `tests` only by test code (*.test.ts and src/testing/).
// Packages marked `free` (the end-to-end tests, the private test support) may import any of ours.
const ARROWS = {
  "@etcd-ts/api": { deps: [] },
  "@etcd-ts/storage": { deps: [] },
  "@etcd-ts/raft": { deps: [] },
  "@etcd-ts/storage-sqlite": { deps: ["@etcd-ts/storage"] },
  "@etcd-ts/storage-lmdb": { deps: ["@etcd-ts/storage"] },
  "@etcd-ts/schema": { deps: ["@etcd-ts/storage"] },
  "@etcd-ts/mvcc": { deps: ["@etcd-ts/api", "@etcd-ts/schema", "@etcd-ts/storage"] },
  "@etcd-ts/lease": { deps: ["@etcd-ts/schema", "@etcd-ts/storage"] },
  "@etcd-ts/watch": { deps: ["@etcd-ts/api"], types: ["@etcd-ts/mvcc"], tests: ["@etcd-ts/mvcc", "@etcd-ts/storage"] },
  "@etcd-ts/auth": { deps: ["@etcd-ts/api", "@etcd-ts/schema", "@etcd-ts/storage"] },
  "@etcd-ts/wal": { deps: ["@etcd-ts/raft"] },
  "@etcd-ts/snapshot": { deps: ["@etcd-ts/schema", "@etcd-ts/storage"] },
  "@etcd-ts/server": {
    deps: [
      "@etcd-ts/api",
      "@etcd-ts/storage",
      "@etcd-ts/schema",
      "@etcd-ts/mvcc",
      "@etcd-ts/lease",
      "@etcd-ts/watch",
      "@etcd-ts/auth",
      "@etcd-ts/raft",
      "@etcd-ts/wal",
      "@etcd-ts/snapshot",
    ],
  },
  // The gateway talks to the member only over gRPC: the wire contract, never the server.
  "@etcd-ts/gateway": { deps: ["@etcd-ts/api"] },
  // The binary is the only importer of the engines; the server takes a Backend.
  "etcd-ts": {
    deps: [
      "@etcd-ts/server",
      "@etcd-ts/gateway",
      "@etcd-ts/schema",
      "@etcd-ts/storage",
      "@etcd-ts/storage-sqlite",
      "@etcd-ts/storage-lmdb",
      "@etcd-ts/snapshot", // --initial-snapshot restores an etcd snapshot file
    ],
  },
  "@etcd-ts/tests": { free: true },
  "@etcd-ts/test-support": { free: true },
};
// Private packages that only test code may import.
const TEST_ONLY = new Set(["@etcd-ts/test-support"]);

const ROOT = import.meta.dirname;
const packageRoots = new Map(); // directory of a source file -> { root, name } of its package

function packageOf(file) {
  let dir = path.dirname(file);
  const start = dir;
  const seen = [];
  while (dir.startsWith(ROOT) && dir !== ROOT) {
    const cached = packageRoots.get(dir);
    if (cached !== undefined) {
      for (const d of seen) packageRoots.set(d, cached);
      return cached;
    }
    seen.push(dir);
    try {
      const { name } = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
      const found = { root: dir, name };
      for (const d of seen) packageRoots.set(d, found);
      return found;
    } catch {
      dir = path.dirname(dir);
    }
  }
  return packageRoots.get(start) ?? null;
}

function isOurs(name) {
  return name === "etcd-ts" || name.startsWith("@etcd-ts/");
}

function packageName(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

const dependencyArrows = {
  meta: {
    type: "problem",
    docs: { description: "our packages import each other only along the arrows of docs/architecture.md" },
    schema: [],
  },
  create(context) {
    const self = packageOf(context.filename);
    if (self === null) return {};
    const arrows = ARROWS[self.name];
    const isTest = context.filename.endsWith(".test.ts") || context.filename.includes(`${path.sep}testing${path.sep}`);

    function check(node, source, typeOnly) {
      if (typeof source !== "string") return;
      if (source.startsWith(".")) {
        const target = path.resolve(path.dirname(context.filename), source);
        if (target !== self.root && !target.startsWith(self.root + path.sep)) {
          context.report({ node, message: `'${source}' reaches outside ${self.name}: import the other package by its name` });
        }
        return;
      }
      const target = packageName(source);
      if (!isOurs(target)) return;
      if (/\/(src|dist)(\/|$)/.test(source.slice(target.length))) {
        context.report({
          node,
          message: `'${source}' reaches into ${target}'s files: import what its index (or an exported subpath) exports`,
        });
        return;
      }
      if (target === self.name) return;
      if (arrows === undefined) {
        context.report({ node, message: `${self.name} is not in the dependency table of eslint.config.js (docs/architecture.md)` });
        return;
      }
      if (arrows.free === true) return;
      if (TEST_ONLY.has(target)) {
        if (!isTest) context.report({ node, message: `${target} is for tests only (*.test.ts, src/testing/)` });
        return;
      }
      if (arrows.deps.includes(target)) return;
      if (typeOnly && arrows.types?.includes(target)) return;
      if (isTest && (arrows.tests?.includes(target) || arrows.types?.includes(target))) return;
      const may = [...arrows.deps, ...(arrows.types ?? []).map((t) => `${t} (types)`)];
      context.report({
        node,
        message: `${self.name} may not import ${target}${arrows.types?.includes(target) ? " except for types" : ""} (docs/architecture.md: it depends on ${may.length === 0 ? "nothing of ours" : may.join(", ")})`,
      });
    }

    return {
      ImportDeclaration(node) {
        const typeOnly =
          node.importKind === "type" || (node.specifiers.length > 0 && node.specifiers.every((s) => s.importKind === "type"));
        check(node, node.source.value, typeOnly);
      },
      ExportNamedDeclaration(node) {
        if (node.source) check(node, node.source.value, node.exportKind === "type");
      },
      ExportAllDeclaration(node) {
        check(node, node.source.value, node.exportKind === "type");
      },
      ImportExpression(node) {
        if (node.source.type === "Literal") check(node, node.source.value, false);
      },
      TSImportType(node) {
        const arg = node.argument;
        const literal = arg.type === "TSLiteralType" ? arg.literal : arg;
        if (literal.type === "Literal") check(node, literal.value, true);
      },
      TSExternalModuleReference(node) {
        if (node.expression.type === "Literal") check(node, node.expression.value, false);
      },
    };
  },
};

export default defineConfig(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/src/gen/**"] },
  {
    files: ["packages/*/src/**/*.ts", "apps/*/src/**/*.ts"],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: ROOT },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    plugins: { "etcd-ts": { rules: { "dependency-arrows": dependencyArrows } } },
    rules: {
      "etcd-ts/dependency-arrows": "error",
      // node:test's test()/describe() return promises the runner itself tracks; awaiting them is not the idiom.
      "@typescript-eslint/no-floating-promises": [
        "error",
        { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "it", "describe", "suite"] }] },
      ],
      // Revisions, IDs and sizes are numbers and bigints printed in messages and keys on purpose.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // With noUncheckedIndexedAccess every index is `T | undefined`; `!` marks indexes in range by construction
      // (raft's log, the B+tree, codecs) where a check would be dead code on a hot path.
      "@typescript-eslint/no-non-null-assertion": "off",
      // `(x) => resolve(x)` and `return check(x)` in a void function are fine; a void value used as a value is not.
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true }],
      // An async function without await is deliberate here: it turns a throw into a rejection (interface
      // methods that return promises, handlers whose callers only catch rejections).
      "@typescript-eslint/require-await": "off",
      // A leading underscore marks a parameter a signature requires but this implementation does not use.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
      // Rejecting with what a catch caught (unknown) or an abort signal's reason (any) passes the failure on
      // unchanged, as `throw e` does (only-throw-error allows both too).
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true, allowThrowingAny: true }],
      // Errors are recognised by name and code so that another installed copy's count too: a guard then treats a
      // value as an instance of a class whose constructor (in this copy) did not make it — on purpose.
      "@typescript-eslint/no-unsafe-class-instance-assignment": "off",
    },
  },
  {
    files: ["**/*.test.ts"],
    rules: {
      // Teardown hooks guard what a failed before() never assigned (`let x: T` filled in by the setup hook).
      "@typescript-eslint/no-unnecessary-condition": "off",
    },
  },
);

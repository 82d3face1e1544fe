import { defineConfig } from "vitest/config";

// What Stryker runs against each mutant (npm run mutation): the unit tests, in Node.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/unit/**/*.test.ts"],
    // summary-reporter runs Vitest itself on fixture files: slow, and no guard of ours is under it.
    // mutation-ranges reads the mutated files' lines, which Stryker's instrumented copies do not keep.
    exclude: ["test/unit/summary-reporter.test.ts", "test/unit/mutation-ranges.test.ts"],
    environment: "node",
    // Stryker's instrumented copies count every statement per test: on CI's machine the pickle walk's
    // bound test (1,000,000 dict items, 131 ms plain) ran past Vitest's default 5 s in the dry run once.
    // A mutant that loops is still stopped by Stryker's own timeout (timeoutMS in stryker.config.json).
    testTimeout: 30_000,
  },
});

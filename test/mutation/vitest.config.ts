import { defineConfig } from "vitest/config";

// What Stryker runs against each mutant (npm run mutation): the unit tests, in Node.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/unit/**/*.test.ts"],
    // It runs Vitest itself on fixture files: slow, and no guard of ours is under it.
    exclude: ["test/unit/summary-reporter.test.ts"],
    environment: "node",
  },
});

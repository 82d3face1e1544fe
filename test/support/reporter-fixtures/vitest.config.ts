// Runs the fixture files of test/unit/summary-reporter.test.ts: a run that fails in every way a
// summary line could hide.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: [process.env.FIXTURES ?? "*.fixture.ts"],
    reporters: [join("..", "summary-reporter.ts")],
  },
});

function join(...parts: string[]): string {
  return new URL(parts.join("/"), `file://${import.meta.dirname}/`).pathname;
}

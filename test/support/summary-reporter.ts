import type { SerializedError } from "vitest";
import type { Reporter, TestCase, TestModule, TestRunEndReason, TestSuite } from "vitest/node";

/** Whether a suite or module, or one above it, failed outside its tests (a hook threw, an import failed). */
function brokenAbove(entity: TestSuite | TestModule): boolean {
  if (entity.errors().length > 0) return true;
  return entity.type === "suite" && brokenAbove(entity.parent);
}

/**
 * Prints one plain closing line, "N passed, N failed, N skipped", after Vitest's own report. It never
 * reads clean for a failed run: a test skipped because its `beforeAll` threw (an integration suite
 * whose registry did not start) is failed, not skipped; a file or suite that failed with no test to
 * show for it counts once; every unhandled error counts; and a run Vitest failed counts at least one.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    modules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    const counts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
    const count = (test: TestCase) => {
      const state = test.result().state;
      if (state === "passed") counts.passed++;
      else if (state === "failed" || brokenAbove(test.parent)) counts.failed++;
      else counts.skipped++;
    };
    for (const module of modules) {
      for (const test of module.children.allTests()) count(test);
      for (const entity of [module, ...module.children.allSuites()]) {
        const noTests = entity.children.allTests().next().done === true;
        if (entity.errors().length > 0 && noTests) counts.failed++;
      }
    }
    if (reason === "failed" && counts.failed === 0) counts.failed = 1;
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}

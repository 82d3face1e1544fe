// The closing line CI reads must never say "0 failed" for a failed run.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const FIXTURES = join(import.meta.dirname, "../support/reporter-fixtures");

function summary(files: string): Promise<{ code: number; line: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        join(import.meta.dirname, "../../node_modules/vitest/vitest.mjs"),
        "run",
        "--config",
        join(FIXTURES, "vitest.config.ts"),
      ],
      { env: { ...process.env, FIXTURES: files, CI: "true" } },
      (error, stdout) => {
        const line = stdout.trim().split("\n").at(-1) ?? "";
        resolve({ code: error ? Number(error.code ?? 1) : 0, line });
      },
    );
  });
}

describe("the summary line", () => {
  it("counts tests skipped under a beforeAll that threw as failed", async () => {
    expect(await summary("hook.fixture.ts")).toEqual({ code: 1, line: "0 passed, 2 failed, 0 skipped" });
  });

  it("counts a file that fails at import as failed", async () => {
    expect(await summary("import.fixture.ts")).toEqual({ code: 1, line: "0 passed, 1 failed, 0 skipped" });
  });

  it("counts an unhandled error as failed", async () => {
    expect(await summary("unhandled.fixture.ts")).toEqual({ code: 1, line: "1 passed, 1 failed, 0 skipped" });
  });

  it("reads clean for a clean run, skips included", async () => {
    expect(await summary("clean.fixture.ts")).toEqual({ code: 0, line: "1 passed, 0 failed, 1 skipped" });
  });
});

import { expect, it } from "vitest";

it("passes", () => expect(1).toBe(1));
// biome-ignore lint/suspicious/noSkippedTests: the summary line must count a skipped test as skipped
it.skip("is skipped on purpose", () => {});

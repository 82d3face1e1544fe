// The TSDoc examples in src/ are files in examples/tsdoc/, type-checked by `tsc -p test` (npm run
// typecheck) against the package name, as the README's are; this test keeps the folder equal to what
// scripts/tsdoc-examples.ts writes from the sources, so an example edited in a doc comment without
// regenerating the folder fails here, and one that does not compile fails the type-check.
import { describe, expect, it } from "vitest";
import {
  committedFiles,
  generatedFiles,
  tsdocExamples,
  uncheckedExamples,
} from "../../scripts/tsdoc-examples.js";

const REGENERATE = "run `npx tsx scripts/tsdoc-examples.ts` and commit examples/tsdoc/";

describe("TSDoc examples", () => {
  const generated = generatedFiles();
  const committed = committedFiles();

  it("are found in src/, and every @example is a ```ts block the type-check sees", () => {
    expect(tsdocExamples().length).toBeGreaterThan(10);
    expect(uncheckedExamples()).toEqual([]);
  });

  it("each have their file in examples/tsdoc/, and the folder has no other", () => {
    expect([...committed.keys()], REGENERATE).toEqual([...generated.keys()]);
  });

  it.each([...generated])("%s is up to date with its doc comment", (path, text) => {
    expect(committed.get(path), REGENERATE).toBe(text);
  });
});

// The mutation run (test/mutation/stryker.config.json) mutates parts of three files by line range.
// Lines move when code around them changes, and a range that slid takes in or leaves out code
// unnoticed until CI's mutation score drops. Each range is pinned here to the lines it starts and
// ends on (test/mutation/ranges.json), so a slide fails at once, naming the lines to write instead.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const config = JSON.parse(readFileSync(join(root, "test/mutation/stryker.config.json"), "utf8")) as {
  mutate: string[];
};
const anchors = JSON.parse(readFileSync(join(root, "test/mutation/ranges.json"), "utf8")) as Record<
  string,
  { first: string; last: string }
>;

const ranged = config.mutate.flatMap((entry) => {
  const m = /^(.+):(\d+)-(\d+)$/.exec(entry);
  return m ? [{ file: m[1] as string, from: Number(m[2]), to: Number(m[3]) }] : [];
});

/** The 1-based numbers of the lines that contain `text`. */
const linesWith = (lines: string[], text: string) =>
  lines.flatMap((line, i) => (line.includes(text) ? [i + 1] : []));

describe("the mutation run's line ranges", () => {
  it("has ranges to check", () => {
    expect(ranged.map((r) => r.file).sort()).toEqual(Object.keys(anchors).sort());
  });

  it.each(ranged)("$file:$from-$to starts and ends on the lines ranges.json names", ({ file, from, to }) => {
    const lines = readFileSync(join(root, file), "utf8").split("\n");
    const { first, last } = anchors[file] as { first: string; last: string };
    const firstAt = linesWith(lines, first);
    const lastAt = linesWith(lines, last);
    expect(firstAt, `"${first}" must stand once in ${file}`).toHaveLength(1);
    expect(lastAt, `"${last}" must stand once in ${file}`).toHaveLength(1);
    expect(`${file}:${from}-${to}`, "write this range in stryker.config.json").toBe(
      `${file}:${firstAt[0]}-${lastAt[0]}`,
    );
  });
});

// The README's code examples are files in examples/, type-checked by `tsc -p test` (npm run typecheck)
// against the package name; this test keeps each README copy equal to its file, so what a reader
// copies is what the compiler checked.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
/** The line right above a ```ts block names its file: `<!-- examples/node.ts -->`. */
const MARKER = /^<!-- (examples\/[\w.-]+\.ts) -->$/;

interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  file: string | undefined;
  code: string;
}

function tsBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const end = lines.indexOf("```", i + 1);
    if (end < 0) throw new Error(`README.md:${i + 1}: a \`\`\`ts block that never closes`);
    blocks.push({
      line: i + 1,
      file: MARKER.exec(lines[i - 1] ?? "")?.[1],
      code: lines.slice(i + 1, end).join("\n"),
    });
    i = end;
  }
  return blocks;
}

const blocks = tsBlocks(README);
const exampleFiles = readdirSync(join(ROOT, "examples"))
  .filter((name) => name.endsWith(".ts"))
  .map((name) => `examples/${name}`);

describe("README examples", () => {
  it("has TypeScript examples, and no code block in a language the type-check would skip", () => {
    expect(blocks.length).toBeGreaterThan(0);
    const unchecked = README.split("\n").filter((l) => /^```(typescript|tsx|jsx?|javascript|mjs)$/.test(l));
    expect(unchecked).toEqual([]);
  });

  it.each(blocks.map((b) => [`README.md:${b.line}`, b] as const))("%s is a file in examples/", (_, block) => {
    expect(block.file, "the line above the block names its file: <!-- examples/NAME.ts -->").toBeDefined();
    expect(exampleFiles).toContain(block.file);
  });

  it.each(
    blocks.filter((b) => b.file !== undefined).map((b) => [`README.md:${b.line} (${b.file})`, b] as const),
  )("%s is the file, byte for byte", (_, block) => {
    const file = readFileSync(join(ROOT, block.file as string), "utf8");
    expect(block.code).toBe(file.replace(/\n$/, ""));
  });

  it("shows every file in examples/ exactly once", () => {
    const shown = blocks.map((b) => b.file);
    for (const file of exampleFiles)
      expect(
        shown.filter((f) => f === file),
        file,
      ).toHaveLength(1);
  });
});

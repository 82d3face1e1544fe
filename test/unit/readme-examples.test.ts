// The code examples of README.md and docs/*.md are files in examples/, type-checked by `tsc -p test`
// (npm run typecheck) against the package name; this test keeps each copy in the documentation equal
// to its file, so what a reader copies is what the compiler checked.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");
/** The documents whose examples are checked: the README and every page under docs/. */
const DOCUMENTS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];
/** The line right above a ```ts block names its file: `<!-- examples/node.ts -->`. */
const MARKER = /^<!-- (examples\/[\w.-]+\.ts) -->$/;

interface Block {
  /** Where the opening fence is: `docs/stores.md:42` (1-based line). */
  at: string;
  file: string | undefined;
  code: string;
}

function tsBlocks(document: string, markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const end = lines.indexOf("```", i + 1);
    if (end < 0) throw new Error(`${document}:${i + 1}: a \`\`\`ts block that never closes`);
    blocks.push({
      at: `${document}:${i + 1}`,
      file: MARKER.exec(lines[i - 1] ?? "")?.[1],
      code: lines.slice(i + 1, end).join("\n"),
    });
    i = end;
  }
  return blocks;
}

const texts = new Map(DOCUMENTS.map((document) => [document, readFileSync(join(ROOT, document), "utf8")]));
const blocks = DOCUMENTS.flatMap((document) => tsBlocks(document, texts.get(document) as string));
const exampleFiles = readdirSync(join(ROOT, "examples"))
  .filter((name) => name.endsWith(".ts"))
  .map((name) => `examples/${name}`);

describe("README and docs/ examples", () => {
  it("reads the README and the pages under docs/", () => {
    expect(DOCUMENTS[0]).toBe("README.md");
    expect(DOCUMENTS.length).toBeGreaterThan(1);
  });

  it("has TypeScript examples in the README", () => {
    expect(blocks.filter((b) => b.at.startsWith("README.md:")).length).toBeGreaterThan(0);
  });

  it.each(DOCUMENTS)("%s has no code block in a language the type-check would skip", (document) => {
    const unchecked = (texts.get(document) as string)
      .split("\n")
      .filter((l) => /^```(typescript|tsx|jsx?|javascript|mjs)$/.test(l));
    expect(unchecked).toEqual([]);
  });

  it.each(blocks.map((b) => [b.at, b] as const))("%s is a file in examples/", (_, block) => {
    expect(block.file, "the line above the block names its file: <!-- examples/NAME.ts -->").toBeDefined();
    expect(exampleFiles).toContain(block.file);
  });

  it.each(blocks.filter((b) => b.file !== undefined).map((b) => [`${b.at} (${b.file})`, b] as const))(
    "%s is the file, byte for byte",
    (_, block) => {
      const file = readFileSync(join(ROOT, block.file as string), "utf8");
      expect(block.code).toBe(file.replace(/\n$/, ""));
    },
  );

  it("shows every file in examples/ exactly once, across the README and docs/", () => {
    const shown = blocks.map((b) => b.file);
    for (const file of exampleFiles)
      expect(
        shown.filter((f) => f === file),
        file,
      ).toHaveLength(1);
  });
});

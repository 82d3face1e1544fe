// Run by `npm test` on the machine's Node, and by test/node-versions/run.mjs on Node 22 and 24, which
// names the major version it started in OML_EXPECT_NODE.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const major = (version: string) => Number(version.replace(/^v/, "").split(".")[0]);

describe("the Node the tests run on", () => {
  it("is the one asked for, and one that package.json's engines names", () => {
    const asked = process.env.OML_EXPECT_NODE;
    if (asked) expect(major(process.version)).toBe(Number(asked));
    const { engines } = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8")) as {
      engines: { node: string };
    };
    const lines = engines.node.split("||").map((range) => major(range.trim().replace(/^\^/, "")));
    expect(lines).toContain(major(process.version));
  });

  it("is the one a process started by name (`node`, as tests and scripts do) gets", () => {
    // A `node` bin in node_modules/.bin (the `node` npm package links one) would replace it under npm scripts.
    const child = execFileSync("node", ["-p", "process.version"], { encoding: "utf8" }).trim();
    expect(child).toBe(process.version);
  });
});

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";
import { Miniflare, type MiniflareOptions } from "miniflare";
import { afterAll, describe, expect, it } from "vitest";

// The whole store contract (test/support/store-contract.ts) against the Cache API store inside
// workerd. Vitest cannot run in workerd, so the worker bundles the contract with a "vitest" of
// describe/it collectors and Vitest's own expect (test/edge/vitest-shim.ts), lists the cases, and
// runs each in its own request; every case becomes a test here, under its own name.

const contractSource = join(import.meta.dirname, "../support/store-contract.ts");

async function startContractWorker(): Promise<Miniflare> {
  const bundle = await build({
    entryPoints: [join(import.meta.dirname, "contract-worker.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "error",
    alias: { vitest: join(import.meta.dirname, "vitest-shim.ts") },
  });
  const mf = new Miniflare({
    modules: [{ type: "ESModule", path: "worker.mjs", contents: bundle.outputFiles[0]?.text ?? "" }],
    compatibilityDate: "2026-04-26",
    cache: true,
  } as MiniflareOptions);
  await mf.ready;
  return mf;
}

const mf = await startContractWorker();
afterAll(() => mf.dispose());
const cases = (await (await mf.dispatchFetch("http://worker/cases")).json()) as string[];

interface CaseResult {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
  stack?: string;
}

describe("the store contract inside workerd", () => {
  it("collects every case of the contract (none lost on the way into the worker)", async () => {
    const source = await readFile(contractSource, "utf8");
    const declared = [...source.matchAll(/^\s+it\("([^"]+)"/gm)].map((m) => m[1]);
    expect(declared.length).toBeGreaterThan(10);
    expect(cases.map((name) => name.split(" > ").at(-1))).toEqual(declared);
  });

  for (const name of cases) {
    it(name.split(" > ").at(-1) as string, async () => {
      const response = await mf.dispatchFetch(`http://worker/run?case=${encodeURIComponent(name)}`);
      const result = (await response.json()) as CaseResult;
      if (!result.ok) console.log(`workerd: ${name}\n${result.stack ?? result.error}`);
      expect(result.error, result.stack).toBeUndefined();
      expect(result).toMatchObject({ name, ok: true });
    });
  }
});

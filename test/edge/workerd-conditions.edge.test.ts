import { createHash } from "node:crypto";
import { join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { describe, expect, it } from "vitest";

// Wrangler bundles with the conditions "workerd", "worker" and "browser"; package.json "imports" maps
// #hash-wasm and #noble-sha2 to an empty module (edge/omitted.js) under "workerd".
const WORKERS = ["workerd", "worker", "browser"];

async function bundle(conditions: string[]) {
  const result = await build({
    entryPoints: [join(import.meta.dirname, "omitted-worker.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    conditions,
    write: false,
    metafile: true,
    logLevel: "error",
  });
  return { code: result.outputFiles[0]?.text ?? "", inputs: Object.keys(result.metafile.inputs) };
}

describe("a bundle for Workers (the workerd condition)", () => {
  it("leaves hash-wasm and @noble/hashes out, which a bundle without the condition holds", async () => {
    const workers = await bundle(WORKERS);
    const plain = await bundle([]);
    const from = (inputs: string[], name: string) => inputs.some((i) => i.includes(`node_modules/${name}/`));
    expect(from(plain.inputs, "hash-wasm") && from(plain.inputs, "@noble/hashes")).toBe(true);
    expect(from(workers.inputs, "hash-wasm")).toBe(false);
    expect(from(workers.inputs, "@noble/hashes")).toBe(false);
    expect(workers.inputs.some((i) => i.endsWith("edge/omitted.js"))).toBe(true);
  });

  it("runs in workerd: the left-out hashers refuse with INVALID_ARGUMENT, the default hashes with DigestStream", async () => {
    const { code } = await bundle(WORKERS);
    // Modules listed explicitly: miniflare then does not walk the bundle for imports.
    const mf = new Miniflare({
      modules: [{ type: "ESModule", path: "worker.mjs", contents: code }],
      compatibilityDate: "2026-04-26",
    });
    try {
      const report = (await (await mf.dispatchFetch("http://worker/")).json()) as Record<string, string>;
      expect(report.wasm).toBe(
        "INVALID_ARGUMENT: Cannot hash with hash-wasm: this build (for Cloudflare Workers) leaves it out; use createDigestStreamHasher",
      );
      expect(report.js).toBe(
        "INVALID_ARGUMENT: Cannot hash with @noble/hashes: this build (for Cloudflare Workers) leaves it out; use createDigestStreamHasher",
      );
      expect(report.sha256).toBe(`sha256:${createHash("sha256").update("abc").digest("hex")}`);
    } finally {
      await mf.dispose();
    }
  });
});

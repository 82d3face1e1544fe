import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const DIST = join(import.meta.dirname, "../../dist");

// Logs every package a fresh Node process resolves while it imports the given modules.
const HOOK = `export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(result.url);
  if (m) console.log("package " + m[1]);
  return result;
}`;

async function packagesLoadedBy(...modules: string[]): Promise<Set<string>> {
  const script = `import { register } from "node:module";
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)});
${modules.map((m) => `await import(${JSON.stringify(m)});`).join("\n")}`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script]);
  return new Set([...stdout.matchAll(/^package (\S+)$/gm)].map((m) => m[1] as string));
}

describe("importing the library", () => {
  // Every module held costs each process resident memory (zip.js alone ~10 MiB, hono ~9 MiB); a pull
  // that reads no zip and serves nothing must not pay for them.
  it("loads zip.js, hash-wasm, fzstd and the HTTP server only when they are used", async () => {
    const loaded = await packagesLoadedBy(join(DIST, "index.js"), join(DIST, "node/index.js"));
    expect(loaded.has("modern-tar"), "the hook sees packages the library does import").toBe(true);
    for (const lazy of ["@zip.js/zip.js", "hash-wasm", "fzstd", "@hono/node-server"])
      expect(loaded).not.toContain(lazy);
  });

  it("the adapters, imported by their package subpaths, load none of the runtimes they adapt", async () => {
    // The runtimes are optional peers: an app brings its own, and the adapters take it as an argument.
    const loaded = await packagesLoadedBy(
      "oci-model-loader/transformers",
      "oci-model-loader/onnxruntime",
      "oci-model-loader/wllama",
    );
    expect(loaded.has("modern-tar")).toBe(true);
    for (const runtime of ["@huggingface/transformers", "onnxruntime-web", "@wllama/wllama"])
      expect(loaded).not.toContain(runtime);
  });
});

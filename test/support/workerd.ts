import { build } from "esbuild";
import { Miniflare, type MiniflareOptions } from "miniflare";

/** Bundles a worker entry (TypeScript) and starts it in workerd through miniflare. */
export async function startWorker(
  entry: string,
  options: Partial<MiniflareOptions> = {},
): Promise<Miniflare> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "error",
  });
  // Modules listed explicitly: miniflare then does not walk the bundle for imports (zip.js keeps a
  // dynamic codec import that is never taken here).
  const mf = new Miniflare({
    modules: [{ type: "ESModule", path: "worker.mjs", contents: bundle.outputFiles[0]?.text ?? "" }],
    compatibilityDate: "2026-04-26",
    ...options,
  } as MiniflareOptions);
  await mf.ready;
  return mf;
}

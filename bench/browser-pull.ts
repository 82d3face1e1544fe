// Browser pull in Chromium through the proxy: ours into OPFS and IndexedDB against the page's own
// fetch + hash-wasm (no storage) and fetch → arrayBuffer → cache.put (no verification), alternating.
import { serveRegistryProxy } from "../src/node/index.js";
import { pushWithSkopeo } from "../test/support/layout.js";
import { dockerV01 } from "../test/support/models.js";
import { startRegistry } from "../test/support/registry.js";
import { openBenchTab } from "./browser-tab.js";

export const BROWSER_PULL_MODES = ["opfs", "idb", "fetch-hash", "fetch-cache"] as const;

export async function runBrowserPullBench(rounds: number, mib: number) {
  const registry = await startRegistry();
  const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
  const shard = new Uint8Array(mib * 1024 * 1024);
  for (let i = 0; i < shard.length; i += 4096) shard[i] = (i / 4096) & 0xff;
  await pushWithSkopeo(registry, (await dockerV01([shard])).artifact, "bench/browser", "v1");
  const { tab, close } = await openBenchTab("pull-page", "runPull");
  try {
    const samples: Record<string, { seconds: number; peakHeap: number; error?: string }[]> = {};
    for (let round = 0; round < rounds; round++) {
      for (const mode of BROWSER_PULL_MODES) {
        const sample = await tab.evaluate(([m, r, p, n]) => window.runPull(m, r, p, n), [
          mode,
          `${registry.host}/bench/browser:v1`,
          proxy.url,
          round,
        ] as const);
        samples[mode] = [...(samples[mode] ?? []), sample];
      }
    }
    return { size: shard.byteLength, samples };
  } finally {
    await close();
    await proxy.close();
    await registry.stop();
  }
}

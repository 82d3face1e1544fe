// Browser pull in Chromium through the proxy: ours into OPFS (from the page, and from a dedicated
// worker) and IndexedDB against the page's own fetch + hash-wasm (no storage) and fetch →
// arrayBuffer → cache.put (no verification), alternating. Each run also counts the CPU time the
// whole machine spent (browser, proxy, registry, kernel), to show what a run costs beyond its wall time.
import { readFile } from "node:fs/promises";
import { serveRegistryProxy } from "../src/node/index.js";
import { pushWithSkopeo } from "../test/support/layout.js";
import { dockerV01 } from "../test/support/models.js";
import { startRegistry } from "../test/support/registry.js";
import { openBenchTab } from "./browser-tab.js";

export const BROWSER_PULL_MODES = ["opfs", "opfs-worker", "idb", "fetch-hash", "fetch-cache"] as const;

/** CPU seconds all cores have spent busy since boot (Linux /proc/stat: all but idle and iowait). */
async function busyCpuSeconds(): Promise<number> {
  const ticks =
    (await readFile("/proc/stat", "utf8")).split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return (ticks.reduce((a, b) => a + b, 0) - idle) / 100; // USER_HZ is 100 on Linux
}

export async function runBrowserPullBench(rounds: number, mib: number) {
  const registry = await startRegistry();
  const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
  const shard = new Uint8Array(mib * 1024 * 1024);
  for (let i = 0; i < shard.length; i += 4096) shard[i] = (i / 4096) & 0xff;
  await pushWithSkopeo(registry, (await dockerV01([shard])).artifact, "bench/browser", "v1");
  const { tab, close } = await openBenchTab("pull-page", "runPull");
  try {
    const samples: Record<
      string,
      { seconds: number; peakHeap: number; cpuSeconds: number; error?: string }[]
    > = {};
    for (let round = 0; round < rounds; round++) {
      for (const mode of BROWSER_PULL_MODES) {
        const busy = await busyCpuSeconds();
        const sample = await tab.evaluate(([m, r, p, n]) => window.runPull(m, r, p, n), [
          mode,
          `${registry.host}/bench/browser:v1`,
          proxy.url,
          round,
        ] as const);
        samples[mode] = [
          ...(samples[mode] ?? []),
          { ...sample, cpuSeconds: (await busyCpuSeconds()) - busy },
        ];
      }
    }
    return { size: shard.byteLength, samples };
  } finally {
    await close();
    await proxy.close();
    await registry.stop();
  }
}

// Browser pulls of a ModelPack model whose weights are tar layers (issue 19), in Chromium through the
// proxy into OPFS and IndexedDB: the same SIZE model as `.raw` layers, uncompressed `.tar` layers and
// `.tar+gzip` layers (bench/make-layout.ts), alternating. Reports time, store bytes, the model's file
// bytes and the bytes read back from the store during the pull.
import { serveRegistryProxy } from "../src/node/index.js";
import { openBenchTab } from "./browser-tab.js";
import type { TarSample } from "./pages/tar-page.js";

export const TAR_LAYOUTS = ["modelpack-raw", "modelpack-tar", "modelpack-tar-gzip"] as const;
export const TAR_STORES = ["opfs", "idb"] as const;

/** `repository(layout)` names where each layout's model is, in the registry at `registryHost`. */
export async function runBrowserTarBench(
  registryHost: string,
  repository: (layout: (typeof TAR_LAYOUTS)[number]) => string,
  rounds: number,
): Promise<Record<string, TarSample[]>> {
  const proxy = await serveRegistryProxy({ allow: [registryHost], port: 0 });
  const { tab, close } = await openBenchTab("tar-page", "runTar");
  const samples: Record<string, TarSample[]> = {};
  try {
    for (let round = 0; round < rounds; round++) {
      for (const store of TAR_STORES) {
        for (const layout of TAR_LAYOUTS) {
          const sample = await tab.evaluate(([s, r, p, n]) => window.runTar(s, r, p, n), [
            store,
            `${registryHost}/${repository(layout)}:v1`,
            proxy.url,
            round,
          ] as const);
          const key = `${store} ${layout}`;
          samples[key] = [...(samples[key] ?? []), sample];
        }
      }
    }
    return samples;
  } finally {
    await close();
    await proxy.close();
  }
}

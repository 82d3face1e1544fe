// WebGPU upload in Chromium: streamed (uploadToGPU) against whole-file reads, alternating A and B.
// Exports runUploadBench(rounds) for bench/run.ts.
import { serveRegistryProxy } from "../src/node/index.js";
import { pushWithSkopeo } from "../test/support/layout.js";
import { dockerV01 } from "../test/support/models.js";
import { startRegistry } from "../test/support/registry.js";
import { writeSafetensors } from "../test/support/safetensors.js";
import { openBenchTab } from "./browser-tab.js";

const CHUNK = 4 * 1024 * 1024;

export async function runUploadBench(rounds: number, shardMiB: number) {
  const registry = await startRegistry();
  const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
  // Two shards of 1 MiB tensors: each shard several times the chunk budget.
  const shard = (seed: number) =>
    writeSafetensors(
      Array.from({ length: shardMiB }, (_, i) => ({
        name: `s${seed}.t${i}`,
        dtype: "F32" as const,
        shape: [256, 1024],
        data: new Uint8Array(1024 * 1024).fill((seed * 31 + i) & 0xff),
      })),
    );
  await pushWithSkopeo(registry, (await dockerV01([shard(1), shard(2)])).artifact, "bench/upload", "v1");
  const { tab, close } = await openBenchTab("upload-page", "prepare");
  try {
    const size = await tab.evaluate(([r, p]) => window.prepare(r, p), [
      `${registry.host}/bench/upload:v1`,
      proxy.url,
    ] as const);
    const samples: Record<string, { seconds: number; firstTensor: number; peakHeap: number }[]> = {
      streamed: [],
      "whole-file": [],
    };
    for (let i = 0; i < rounds; i++) {
      for (const mode of ["streamed", "whole-file"] as const) {
        samples[mode]?.push(await tab.evaluate(([m, c]) => window.run(m, c), [mode, CHUNK] as const));
      }
    }
    return { size, chunk: CHUNK, samples };
  } finally {
    await close();
    await proxy.close();
    await registry.stop();
  }
}

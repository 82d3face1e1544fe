import { createHash } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createMemoryStore,
  createRegistryClient,
  isOciError,
  pullModel,
  type Store,
} from "../../src/index.js";
import { createNodeHasher } from "../../src/node/index.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const RUNS = Number(process.env.SOAK_RUNS ?? 200);
const SEED = Number(process.env.SOAK_SEED ?? 20261127);

/** Every blob the store shows must hash to its digest. */
async function soundBlobs(store: Store): Promise<number> {
  let sound = 0;
  for (const blob of await store.list()) {
    const hash = createHash("sha256");
    for await (const chunk of await store.fetch(blob)) hash.update(chunk);
    expect(`sha256:${hash.digest("hex")}`, `blob ${blob.digest} in the store`).toBe(blob.digest);
    sound++;
  }
  return sound;
}

describe("soak: pulls through injected faults", () => {
  let registry: TestRegistry;
  let fixture: ModelFixture;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    registry = await startRegistry({ auth: "token" });
    fixture = await dockerV01([
      new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff),
      new Uint8Array(120_000).fill(3),
    ]);
    await pushWithSkopeo(registry, fixture.artifact, "public/soak", "v1");
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await registry?.stop();
  });

  it(`${RUNS} seeded runs end complete and byte-exact, or refused with a code, with only sound blobs stored`, async () => {
    const proxy = await startFaultProxy({ upstream: registry.host, seed: SEED, rate: 0.3, stallMs: 400 });
    const outcomes: Record<string, number> = {};
    const needed = [...fixture.artifact.blobs.values()].reduce((n, b) => n + b.byteLength, 0) * RUNS;
    let sound = 0;
    let heapAfterWarmup = 0;
    try {
      for (let run = 0; run < RUNS; run++) {
        const store = createMemoryStore({ chunkSize: 64 * 1024 });
        const client = createRegistryClient({
          retries: 2,
          retryDelay: 1,
          timeout: 200,
          createHasher: createNodeHasher,
        });
        let outcome = "";
        for (let attempt = 0; attempt < 4 && outcome !== "complete"; attempt++) {
          try {
            const model = await pullModel(`${proxy.host}/public/soak:v1`, { store, client });
            for (const [path, bytes] of Object.entries(fixture.files)) {
              expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
            }
            outcome = "complete";
          } catch (error) {
            if (!isOciError(error)) throw error;
            outcome = error.code;
          }
        }
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        sound += await soundBlobs(store);
        if (run === 19) {
          gc();
          heapAfterWarmup = process.memoryUsage().heapUsed;
        }
      }
      gc();
      const growth = (process.memoryUsage().heapUsed - heapAfterWarmup) / 1024 / 1024;
      const faults = Object.values(proxy.injected).reduce((a, b) => a + b, 0);
      console.log(
        `soak: ${RUNS} runs, ${faults} faults injected ${JSON.stringify(proxy.injected)}, outcomes ${JSON.stringify(outcomes)}, ${sound} blobs verified sound, ${proxy.blobBytes()} blob bytes transferred for ${needed} needed, heap growth ${growth.toFixed(1)} MiB`,
      );
      expect(faults).toBeGreaterThan(RUNS / 2);
      expect(outcomes.complete).toBeGreaterThan(RUNS * 0.8);
      expect(growth).toBeLessThan(16);
      expect(unhandled).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 240_000);

  it("resumes cut connections transferring at most the model size + 5% in total", async () => {
    const proxy = await startFaultProxy({
      upstream: registry.host,
      seed: SEED + 1,
      rate: 0.5,
      faults: ["reset"],
    });
    const needed = [...fixture.artifact.blobs.values()].reduce((n, b) => n + b.byteLength, 0);
    let transferred = 0;
    try {
      for (let run = 0; run < 20; run++) {
        const store = createMemoryStore({ chunkSize: 16 * 1024 });
        const client = createRegistryClient({ retries: 0, createHasher: createNodeHasher });
        const before = proxy.blobBytes();
        for (let attempt = 0; attempt < 20; attempt++) {
          const done = await pullModel(`${proxy.host}/public/soak:v1`, { store, client }).then(
            () => true,
            (error: unknown) => {
              if (!isOciError(error)) throw error;
              return false;
            },
          );
          if (done) break;
        }
        const bytes = proxy.blobBytes() - before;
        transferred += bytes;
        expect(bytes, `run ${run}`).toBeLessThanOrEqual(needed * 1.05);
      }
      console.log(
        `resume: 20 runs with ${proxy.injected.reset ?? 0} cut connections, ${transferred} bytes transferred for ${needed * 20} needed`,
      );
      expect(proxy.injected.reset ?? 0).toBeGreaterThan(10);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

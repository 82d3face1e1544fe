// A test worker: the Cache API store on caches.default inside workerd, exercised end to end.
import { createCacheStore, type OciError } from "../../src/index.js";
import { blobOf, chunked, countingSource, equal, readAll } from "../support/blobs.js";

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return (error as OciError).code ?? String(error);
  }
}

export default {
  async fetch(): Promise<Response> {
    const store = createCacheStore((caches as unknown as { default: Cache }).default, {
      name: crypto.randomUUID(),
      chunkSize: 256 * 1024,
    });
    const report: Record<string, unknown> = {};
    const { bytes, descriptor } = await blobOf(700_001);
    await store.push(descriptor, chunked(bytes));
    report.roundTrip = equal(await readAll(await store.fetch(descriptor)), bytes);
    report.range = equal(
      await readAll(await store.fetch(descriptor, { offset: 300_000, length: 1000 })),
      bytes.subarray(300_000, 301_000),
    );

    const flipped = await blobOf(100_000);
    const bad = flipped.bytes.slice();
    bad[5] = (bad[5] ?? 0) ^ 1;
    report.flipped = await code(store.push(flipped.descriptor, chunked(bad)));
    report.flippedVisible = await store.exists(flipped.descriptor);

    const big = await blobOf(1024 * 1024 + 3);
    const cut = countingSource(big.bytes, 600_000);
    report.cut = await code(store.push(big.descriptor, cut.source));
    const rest = countingSource(big.bytes);
    const resumed = await store.push(big.descriptor, rest.source);
    report.resumedFrom = resumed.resumedFrom;
    report.restCalls = rest.calls;
    report.servedTotal = cut.served() + rest.served();
    report.resumedEqual = equal(await readAll(await store.fetch(big.descriptor)), big.bytes);
    report.size = big.bytes.byteLength;
    return Response.json(report);
  },
};

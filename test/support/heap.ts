// The page's JS heap as Chromium's DevTools protocol reports it, for the browser tests that report
// what a runtime adapter costs (browser side: vitest/browser's CDP session).
import { cdp } from "vitest/browser";

/**
 * Peak growth of the page's JS heap (V8 heap plus ArrayBuffer backing stores, wasm memory included;
 * garbage not yet collected counts) while `fn` runs, sampled without pause from a collected start,
 * and what is still held after a collection at the end.
 */
export async function heapGrowth<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; peak: number; retained: number }> {
  const session = cdp();
  const usage = async () => {
    const u = (await session.send("Runtime.getHeapUsage")) as {
      usedSize: number;
      backingStorageSize?: number;
    };
    return u.usedSize + (u.backingStorageSize ?? 0);
  };
  await session.send("HeapProfiler.collectGarbage");
  const base = await usage();
  let peak = base;
  let running = true;
  const sampler = (async () => {
    while (running) peak = Math.max(peak, await usage());
  })();
  try {
    const result = await fn();
    running = false;
    await sampler;
    peak = Math.max(peak, await usage());
    await session.send("HeapProfiler.collectGarbage");
    return { result, peak: peak - base, retained: (await usage()) - base };
  } finally {
    running = false;
    await sampler;
  }
}

// Peak JS heap while some work runs (Chromium's performance.memory; start Chromium with
// --enable-precise-memory-info and --js-flags=--expose-gc).
const heap = () =>
  (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;

/** Starts sampling; `stop()` returns the peak growth over the starting heap, in bytes. */
export function sampleHeap(): { stop(): number } {
  (globalThis as { gc?: () => void }).gc?.();
  const base = heap();
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, heap());
  }, 5);
  return {
    stop: () => {
      clearInterval(sampler);
      return Math.max(peak, heap()) - base;
    },
  };
}

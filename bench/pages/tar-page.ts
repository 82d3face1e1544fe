// Benchmark page (issue 19): pull a model through the proxy into OPFS or IndexedDB with pullModel,
// every read of a stored blob counted (the store's `fetch` wrapped), and report the time, the store's
// blob bytes, the model's file bytes, the bytes read back and how many files are served in place.
import { createIdbStore, createOpfsStore, pullModel, type Store } from "../../src/index.js";

export interface TarSample {
  seconds: number;
  storeBytes: number;
  fileBytes: number;
  /** Bytes of the manifest's layers read back from the store during the pull. */
  readBack: number;
  /** Bytes of other blobs read back (the config blob: metadata). */
  readBackOther: number;
  inPlace: number;
  error?: string;
}

declare global {
  interface Window {
    runTar(kind: "opfs" | "idb", reference: string, proxy: string, round: number): Promise<TarSample>;
  }
}

window.runTar = async (kind, reference, proxy, round) => {
  const name = `bench-tar-${round}`;
  const base = kind === "opfs" ? createOpfsStore(name) : createIdbStore(name);
  const reads = new Map<string, number>();
  const store: Store = {
    ...base,
    fetch: async (blob, options) =>
      (await base.fetch(blob, options)).pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            reads.set(blob.digest, (reads.get(blob.digest) ?? 0) + chunk.byteLength);
            controller.enqueue(chunk);
          },
        }),
      ),
  };
  try {
    const started = performance.now();
    const model = await pullModel(reference, { store, proxy });
    const seconds = (performance.now() - started) / 1000;
    const files = [...model.files.values()];
    const size = (await base.list()).find((b) => b.digest === model.digest)?.size ?? 0;
    const manifest = JSON.parse(
      await new Response(await base.fetch({ digest: model.digest, size })).text(),
    ) as { layers: { digest: string }[] };
    const layers = new Set(manifest.layers.map((l) => l.digest));
    let readBack = 0;
    let readBackOther = 0;
    for (const [digest, bytes] of reads) {
      if (layers.has(digest)) readBack += bytes;
      else readBackOther += bytes;
    }
    return {
      seconds,
      storeBytes: (await base.usage()).bytes,
      fileBytes: files.reduce((n, f) => n + f.size, 0),
      readBack,
      readBackOther,
      inPlace: files.filter((f) => f.layer).length,
    };
  } catch (error) {
    const nan = Number.NaN;
    return {
      seconds: nan,
      storeBytes: nan,
      fileBytes: nan,
      readBack: nan,
      readBackOther: nan,
      inPlace: nan,
      error: error instanceof Error ? error.message : String(error),
    };
  } finally {
    // Not timed: what a run stored goes, so the profile does not fill up over the rounds.
    for (const tag of (await base.tags()).keys()) await base.untag(tag);
    await base.gc({ ingestMaxAgeMs: 0 });
  }
};

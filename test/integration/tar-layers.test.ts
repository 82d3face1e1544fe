// Issue 19: archive layers read while they stream into the store. An uncompressed tar's files are
// served in place (byte ranges of the stored layer: no copy, nothing read back); a compressed tar's
// files are stored once as blobs after one read of the stored layer. Pushed with skopeo to the real
// Distribution, pulled into the fs store.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PullEvent, pullModel, pushModel, type Store, toFloat32 } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { failure } from "../support/failure.js";
import { pushWithSkopeo, sameBytes, sha256 } from "../support/layout.js";
import { type ModelFixture, modelPackTarWeights } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { shards, tensorSpecs } from "../support/tensor-model.js";

/** A store whose reads are logged by digest (the engine's own ingest reads are not reads of a blob). */
function counted(store: Store): { store: Store; reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    store: {
      ...store,
      fetch: (blob, options) => {
        reads.push(blob.digest);
        return store.fetch(blob, options);
      },
    },
  };
}

describe("tar layers against the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  let fixture: ModelFixture;
  let ref: string;
  let tarLayer: { digest: string; size: number };
  let gzipLayer: { digest: string; size: number };

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    fixture = await modelPackTarWeights(shards(), 24 * 1024 * 1024);
    await pushWithSkopeo(registry, fixture.artifact, "models/tar-weights", "v1");
    ref = `${registry.host}/models/tar-weights:v1`;
    const manifest = JSON.parse(new TextDecoder().decode(fixture.artifact.bytes));
    [tarLayer, gzipLayer] = manifest.layers;
    dir = await mkdtemp(join(tmpdir(), "oml-tar-layers-"));
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves an uncompressed tar's files in place, stores a gzip tar's once, and reads back only the gzip layer", async () => {
    const { store, reads } = counted(createFsStore(join(dir, "in-place")));
    const model = await pullModel(ref, { store });
    const during = reads.splice(0);
    expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
    for (const [path, bytes] of Object.entries(fixture.files)) {
      const file = model.files.get(path);
      // A file in place is named by its range of the layer, whose digest verified it: no second hash.
      if (file?.layer) expect(file.digest, path).toBeUndefined();
      else expect(file?.digest, path).toBe(await sha256(bytes));
      expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
    }
    expect(model.weights).toEqual(fixture.weights);
    // Each file of the plain tar is a range of the layer: its bytes, at that offset, are the file's.
    const tar = fixture.artifact.blobs.get(tarLayer.digest) as Uint8Array;
    for (const path of Object.keys(fixture.files).filter((p) => p.startsWith("weights/"))) {
      const file = model.files.get(path);
      expect(file?.layer, path).toMatchObject({ digest: tarLayer.digest, size: tarLayer.size });
      const at = file?.layer?.offset as number;
      expect(
        sameBytes(tar.subarray(at, at + (file?.size ?? 0)), fixture.files[path] as Uint8Array),
        path,
      ).toBe(true);
    }
    expect(model.files.get("config.json")?.layer).toBeUndefined();
    // Nothing of the plain tar was read back during the pull; the gzip layer once, to store its files.
    expect(during.filter((d) => d === tarLayer.digest)).toEqual([]);
    expect(during.filter((d) => d === gzipLayer.digest)).toEqual([gzipLayer.digest]);
    // The plain tar's files are stored nowhere else: the store holds the layer, not a copy.
    const blobs = new Set((await store.list()).map((b) => b.digest));
    expect(blobs.has(tarLayer.digest)).toBe(true);
    for (const path of Object.keys(fixture.files).filter((p) => p.startsWith("weights/")))
      expect(blobs.has(await sha256(fixture.files[path] as Uint8Array)), path).toBe(false);
    expect(blobs.has(model.files.get("config.json")?.digest as string)).toBe(true);
    // The gzip layer is dropped once its files are stored: the store holds each file once.
    expect(blobs.has(gzipLayer.digest)).toBe(false);
    const fileBytes = Object.values(fixture.files).reduce((n, b) => n + b.byteLength, 0);
    const { bytes: stored, ingestBytes } = await store.usage();
    expect(ingestBytes).toBe(0);
    // What is not a file: the tar's headers and padding, the manifest, config and the record (a few KiB).
    expect(stored - fileBytes).toBeGreaterThan(0);
    expect(stored - fileBytes).toBeLessThan(64 * 1024);
  });

  it("keeps the compressed layer when asked, and can push the model again only then", async () => {
    const kept = createFsStore(join(dir, "kept"));
    const dropped = createFsStore(join(dir, "dropped"));
    await pullModel(ref, { store: kept, keepArchives: true });
    await pullModel(ref, { store: dropped });
    expect(await kept.exists(gzipLayer)).toBe(true);
    expect(await dropped.exists(gzipLayer)).toBe(false);
    const error = await failure(pushModel(dropped, ref, `${registry.host}/models/tar-weights-pushed:v1`));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toMatch(new RegExp(`${gzipLayer.digest}.*keepArchives`));
    const pushed = await pushModel(kept, ref, `${registry.host}/models/tar-weights-pushed:v1`);
    expect(pushed.digest).toBe(fixture.artifact.descriptor.digest);
  });

  it("fetches a compressed layer again when another pull dropped it between its push and its read", async () => {
    const store = createFsStore(join(dir, "raced"));
    await pullModel(ref, { store, keepArchives: true });
    // Forget the model but keep its blobs (removeModel would collect them).
    for (const name of (await store.tags()).keys()) await store.untag(name);
    let raced = false;
    const racing: Store = {
      ...store,
      fetch: async (blob, options) => {
        // The other pull drops the layer just as this one comes to read it.
        if (blob.digest === gzipLayer.digest && !raced) {
          raced = true;
          await store.delete(blob);
        }
        return store.fetch(blob, options);
      },
    };
    registry.blobPaths.length = 0;
    const model = await pullModel(ref, { store: racing });
    expect(registry.blobPaths.filter((p) => p.includes(gzipLayer.digest.slice(7)))).toHaveLength(1);
    for (const path of ["config.json", "tokenizer.json"])
      expect(new Uint8Array(await model.file(path).arrayBuffer()), path).toEqual(fixture.files[path]);
  });

  it("a pull resumed after its compressed layer was stored drops it as an uninterrupted one does", async () => {
    const store = createFsStore(join(dir, "resumed-gzip"));
    const controller = new AbortController();
    let gzipStored = false;
    const onProgress = (e: PullEvent) => {
      if (e.type === "layer-done" && e.digest === gzipLayer.digest) gzipStored = true;
      if (gzipStored && e.type === "progress" && e.digest === tarLayer.digest && e.loaded > tarLayer.size / 2)
        controller.abort();
    };
    expect(await failure(pullModel(ref, { store, signal: controller.signal, onProgress }))).toMatchObject({
      code: "ABORTED",
    });
    expect(await store.exists(gzipLayer)).toBe(true); // stored by the cut pull
    await pullModel(ref, { store });
    expect(await store.exists(gzipLayer)).toBe(false);
  });

  it("leaves a compressed layer that a model pulled with keepArchives keeps", async () => {
    const store = createFsStore(join(dir, "shared-kept"));
    await pullModel(ref, { store, keepArchives: true });
    await pushWithSkopeo(registry, fixture.artifact, "models/tar-weights-other", "v1");
    const other = await pullModel(`${registry.host}/models/tar-weights-other:v1`, { store });
    expect(await store.exists(gzipLayer)).toBe(true);
    expect(new Uint8Array(await other.file("config.json").arrayBuffer())).toEqual(
      fixture.files["config.json"],
    );
  });

  it("pulls the same manifest under another tag from the files it has: no blob request", async () => {
    const store = createFsStore(join(dir, "in-place"));
    await pushWithSkopeo(registry, fixture.artifact, "models/tar-weights", "latest");
    registry.blobPaths.length = 0;
    const latest = await pullModel(`${registry.host}/models/tar-weights:latest`, { store });
    expect(registry.blobPaths).toEqual([]);
    expect(latest.reference).toBe(`${registry.host}/models/tar-weights:latest`);
    expect(new Uint8Array(await latest.file("tokenizer.json").arrayBuffer())).toEqual(
      fixture.files["tokenizer.json"],
    );
  });

  it("reads tensors from in-place files by range, as from any file", async () => {
    const model = await pullModel(ref, { store: createFsStore(join(dir, "in-place")) });
    const index = await model.tensorIndex();
    for (const spec of tensorSpecs().filter((s) => s.dtype !== "I32")) {
      expect(index.get(spec.name)?.file, spec.name).toMatch(/^weights\//);
      const want = toFloat32(spec.dtype as "F32", spec.data as Uint8Array);
      expect(toFloat32(spec.dtype as "F32", await model.readTensor(spec.name))).toEqual(want);
    }
  });

  it("a pull stopped inside the tar layer resumes there and ends with the same record and bytes", async () => {
    const store = createFsStore(join(dir, "resumed"));
    const controller = new AbortController();
    const onProgress = (e: PullEvent) => {
      if (e.type === "progress" && e.digest === tarLayer.digest && e.loaded > tarLayer.size / 2)
        controller.abort();
    };
    const stopped = await pullModel(ref, {
      store,
      signal: controller.signal,
      onProgress,
      concurrency: 1,
    }).catch((e: { code?: string }) => e.code);
    expect(stopped).toBe("ABORTED");
    // The stopped push finishes writing what arrived in the background; the next pull of the blob
    // waits for it (the store's per-digest lock) and resumes where it ended.
    let fetched = 0;
    const model = await pullModel(ref, {
      store,
      onProgress: (e) => {
        if (e.type === "done") fetched = e.fetchedBytes;
      },
    });
    expect(fetched).toBeLessThan(tarLayer.size * 0.75);
    const whole = await pullModel(ref, { store: createFsStore(join(dir, "whole")) });
    expect([...model.files.values()]).toEqual([...whole.files.values()]);
    for (const [path, bytes] of Object.entries(fixture.files))
      expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
  });

  it("reads a tar layer the store already holds once, for another model that shares it", async () => {
    const { store, reads } = counted(createFsStore(join(dir, "in-place")));
    await pushWithSkopeo(registry, fixture.artifact, "models/tar-weights-copy", "v1");
    const copy = await pullModel(`${registry.host}/models/tar-weights-copy:v1`, { store });
    expect(reads.filter((d) => d === tarLayer.digest)).toEqual([tarLayer.digest]);
    expect(copy.files.get("weights/model-00001-of-00002.safetensors")?.layer?.digest).toBe(tarLayer.digest);
  });
});

// tar+zstd layers, and KitOps raw layers compressed as a whole, pushed with skopeo to the real
// Distribution registry and pulled with pullModel in Node (fzstd decodes: Node 20 has no
// DecompressionStream("zstd")).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, pullModel, toFloat32 } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { expectedGguf, ggufFixture } from "../support/gguf.js";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import type { ModelFixture } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { kitOpsRawCompressed, kitOpsTarZstd, modelPackTarZstd } from "../support/zstd-models.js";

describe("tar+zstd layers from the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  const fixtures: Record<string, ModelFixture> = {};

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    fixtures.modelpack = await modelPackTarZstd();
    fixtures.kitops = await kitOpsTarZstd();
    fixtures["kitops-raw"] = kitOpsRawCompressed(ggufFixture("tiny-llama.gguf"));
    for (const [name, fixture] of Object.entries(fixtures))
      await pushWithSkopeo(registry, fixture.artifact, `models/zstd-${name}`, "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-zstd-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["modelpack", "modelpack"],
    ["kitops", "kitops"],
  ])("pulls a %s tar+zstd model whose files equal the originals", async (name, format) => {
    const fixture = fixtures[name] as ModelFixture;
    for (const store of [createMemoryStore(), createFsStore(join(dir, name))]) {
      const model = await pullModel(`${registry.host}/models/zstd-${name}:v1`, { store });
      expect(model.format).toBe(format);
      expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
      for (const [path, bytes] of Object.entries(fixture.files))
        expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
      expect(model.weights).toEqual(fixture.weights);
    }
  });

  it("unpacks KitOps raw layers compressed as a whole: each file stored once unpacked, by its own digest", async () => {
    const fixture = fixtures["kitops-raw"] as ModelFixture;
    for (const store of [createMemoryStore(), createFsStore(join(dir, "kitops-raw"))]) {
      const extracted: string[] = [];
      const model = await pullModel(`${registry.host}/models/zstd-kitops-raw:v1`, {
        store,
        onProgress: (e) => {
          if (e.type === "extract") extracted.push(e.path);
        },
      });
      expect(model.format).toBe("kitops");
      expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
      for (const [path, bytes] of Object.entries(fixture.files)) {
        expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
        expect(model.files.get(path)?.size, path).toBe(bytes.byteLength);
      }
      // Only the three compressed layers were unpacked; the plain raw one is its own blob.
      expect(extracted.sort()).toEqual(
        Object.keys(fixture.files)
          .filter((p) => p !== "README.md")
          .sort(),
      );
      expect(model.files.get("model.gguf")?.mediaType).toBe("application/vnd.kitops.modelkit.model.v1.raw");
      expect(model.weights).toEqual(fixture.weights);
      // The unpacked GGUF is a tensor file like any other: its values are what llama.cpp's gguf reads.
      const want = expectedGguf().files["tiny-llama.gguf"]?.tensors.find(
        (t) => t.name === "output_norm.weight",
      );
      expect(Array.from(toFloat32("F32", await model.readTensor("output_norm.weight")))).toEqual(
        want?.values,
      );
    }
  });
});

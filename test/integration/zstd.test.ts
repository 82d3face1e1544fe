// tar+zstd layers pushed with skopeo to the real Distribution registry and pulled with pullModel in
// Node (fzstd decodes: Node 20 has no DecompressionStream("zstd")).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, pullModel } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import type { ModelFixture } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { kitOpsTarZstd, modelPackTarZstd } from "../support/zstd-models.js";

describe("tar+zstd layers from the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  const fixtures: Record<string, ModelFixture> = {};

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    fixtures.modelpack = await modelPackTarZstd();
    fixtures.kitops = await kitOpsTarZstd();
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
});

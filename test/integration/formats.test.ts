// The shapes registries hold (issue 17): every Docker, ModelPack and KitOps layer type, pushed with
// skopeo to the real Distribution, pulled back with pullModel and `oci-model pull --output`.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, inspectModel, type Model, pullModel } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import {
  dockerDduf,
  dockerGgufBundle,
  dockerGgufSpecTypes,
  dockerPrototype,
  dockerSafetensorsSingle,
  dockerV02Annotated,
  type FormatFixture,
  kitOpsModelKit,
  modelPackAllKinds,
  modelPackLegacySafetensors,
} from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Every file under `dir`, as relative paths. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

async function expectModel(model: Model, fixture: FormatFixture): Promise<void> {
  expect(model.format).toBe(fixture.format);
  expect(model.digest).toBe(fixture.artifact.descriptor.digest);
  expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
  for (const [path, bytes] of Object.entries(fixture.files)) {
    expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
  }
  expect(model.weights).toEqual(fixture.weights);
  for (const [path, info] of model.files) expect(info.weight, path).toBe(fixture.weights.includes(path));
  if (fixture.info) expect(model.info).toMatchObject(fixture.info);
  expect(await model.chatTemplate()).toBe(fixture.chatTemplate);
}

describe("the model shapes registries hold, against the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  const fixtures: Record<string, FormatFixture> = {};

  beforeAll(async () => {
    registry = await startRegistry();
    const made: Record<string, FormatFixture> = {
      "docker-gguf-bundle": dockerGgufBundle(),
      "docker-gguf-spec": dockerGgufSpecTypes(),
      "docker-safetensors": await dockerSafetensorsSingle(),
      "docker-dduf": dockerDduf(),
      "docker-v02": await dockerV02Annotated(),
      "docker-prototype": dockerPrototype(),
      "modelpack-all": await modelPackAllKinds(),
      "modelpack-legacy": modelPackLegacySafetensors(),
      "kitops-typed": await kitOpsModelKit({ artifactType: true, mediaType: true }),
      "kitops-untyped": await kitOpsModelKit({ artifactType: false, mediaType: true }),
      "kitops-bare": await kitOpsModelKit({ artifactType: true, mediaType: false }),
      "kitops-bare-untyped": await kitOpsModelKit({ artifactType: false, mediaType: false }),
    };
    for (const [name, fixture] of Object.entries(made)) {
      fixtures[name] = fixture;
      await pushWithSkopeo(registry, fixture.artifact, `shapes/${name}`, "v1");
    }
    dir = await mkdtemp(join(tmpdir(), "oml-formats-"));
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    "docker-gguf-bundle",
    "docker-gguf-spec",
    "docker-safetensors",
    "docker-dduf",
    "docker-v02",
    "docker-prototype",
    "modelpack-all",
    "modelpack-legacy",
    "kitops-typed",
    "kitops-untyped",
    "kitops-bare",
    "kitops-bare-untyped",
  ])("pulls %s into memory: file names, bytes, weights, info, chat template", async (name) => {
    const fixture = fixtures[name] as FormatFixture;
    const model = await pullModel(`${registry.host}/shapes/${name}:v1`, { store: createMemoryStore() });
    await expectModel(model, fixture);
  });

  it("reads a manifest the registry holds without a top-level mediaType as an OCI manifest", async () => {
    const body = JSON.parse(new TextDecoder().decode(fixtures["kitops-bare"]?.artifact.bytes));
    expect(body.mediaType).toBeUndefined();
    const summary = await inspectModel(`${registry.host}/shapes/kitops-bare:v1`);
    expect(summary).toMatchObject({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.kitops.modelkit.manifest.v1+json",
      format: "kitops",
    });
  });

  it("inspect names every unannotated file the way the pull writes it", async () => {
    const summary = await inspectModel(`${registry.host}/shapes/docker-gguf-bundle:v1`);
    expect(summary.layers.map((l) => l.path)).toEqual([
      "model-00001-of-00002.gguf",
      "model-00002-of-00002.gguf",
      "model.mmproj",
      "template.jinja",
      "LICENSE",
      "LICENSE-2",
    ]);
  });

  it("a config-only pull of the GGUF bundle leaves out the shards and the projector, keeps template and licenses", async () => {
    const fixture = fixtures["docker-gguf-bundle"] as FormatFixture;
    const store = createFsStore(join(dir, "config-only"));
    const model = await pullModel(`${registry.host}/shapes/docker-gguf-bundle:v1`, { store, weights: false });
    expect(model.complete).toBe(false);
    expect([...model.files.keys()].sort()).toEqual(["LICENSE", "LICENSE-2", "template.jinja"]);
    expect(await model.chatTemplate()).toBe(fixture.chatTemplate);
    expect(model.info).toMatchObject(fixture.info ?? {});
  });

  it.each(["docker-gguf-bundle", "docker-gguf-spec", "docker-v02", "modelpack-all", "kitops-bare"])(
    "oci-model pull --output writes %s as the folder llama.cpp and vLLM expect",
    async (name) => {
      const fixture = fixtures[name] as FormatFixture;
      const output = join(dir, `out-${name}`);
      const result = await cli([
        "pull",
        `${registry.host}/shapes/${name}:v1`,
        "--store",
        join(dir, "cli-store"),
        "--output",
        output,
        "--json",
      ]);
      expect(result.code, result.stderr).toBe(0);
      const summary = JSON.parse(result.stdout);
      expect(summary).toMatchObject({ format: fixture.format, complete: true });
      // Each file: its own blob's digest, or (served in place from a tar layer) where it lies there.
      for (const file of summary.files as { path: string; digest?: string; layer?: { offset: number } }[]) {
        const bytes = fixture.files[file.path] as Uint8Array;
        if (file.layer) expect(file.digest, file.path).toBeUndefined();
        else
          expect(file.digest, file.path).toBe(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
      }
      expect(await filesUnder(output)).toEqual(Object.keys(fixture.files).sort());
      for (const [path, bytes] of Object.entries(fixture.files))
        expect(sameBytes(await readFile(join(output, path)), bytes), path).toBe(true);
    },
  );
});

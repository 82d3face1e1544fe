// Ollama's shapes (issue 17), pushed to the real Distribution and pulled back with
// pullModel and `oci-model pull --output`: the legacy one (a Docker v2 manifest, a container image
// config holding ConfigV2, GGUF weights in the model layer; ollama/ollama server/images.go,
// types/model/config.go) and the newer one (a config; type=… layer, one tensor per layer with
// name/dtype/shape parameters, tokenizer layers; server/internal/manifest/manifest.go).
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, createRegistryClient, pullModel, remoteTensorIndex } from "../../src/index.js";
import { type Artifact, buildManifest, sameBytes } from "../support/layout.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const FIXTURES = join(import.meta.dirname, "../fixtures/gguf");
const O = "application/vnd.ollama.image.";
const DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json";
const CONTAINER_CONFIG = "application/vnd.docker.container.image.v1+json";
const text = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

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

/**
 * Pushes with this library's registry client (blobs, then the manifest's exact bytes). Not with
 * skopeo: 1.9.3 refuses these Docker v2 manifests both from an `oci:` layout (its index.json lookup
 * considers OCI manifests only: "no descriptor found for reference") and from `dir:` ("unsupported
 * docker v2s2 media type: application/vnd.ollama.image.model").
 */
async function push(registry: TestRegistry, artifact: Artifact, repository: string, tag: string) {
  const client = createRegistryClient();
  const ref = `${registry.host}/${repository}:${tag}`;
  for (const [digest, bytes] of artifact.blobs)
    await client.pushBlob(ref, { digest, size: bytes.byteLength }, bytes);
  expect(await client.putManifest(ref, artifact.bytes, artifact.descriptor.mediaType)).toBe(
    artifact.descriptor.digest,
  );
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

interface Fixture {
  artifact: Artifact;
  files: Record<string, Uint8Array>;
  weights: string[];
}

/** Ollama's ConfigV2: the container config fields and Ollama's own (types/model/config.go). */
const configV2 = (format: string) =>
  text({
    model_format: format,
    model_family: "llama",
    model_families: ["llama"],
    model_type: "1.2M",
    file_type: format === "gguf" ? "F16" : "BF16",
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [] },
  });

async function legacy(): Promise<Fixture> {
  const gguf = new Uint8Array(await readFile(join(FIXTURES, "tiny-llama.gguf")));
  const projector = new Uint8Array(await readFile(join(FIXTURES, "aligned.gguf")));
  const template = text("{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>");
  const system = text("You are a tiny llama.");
  const params = text({ stop: ["<|user|>"], temperature: 0.7 });
  const license = text("MIT License\n");
  const artifact = buildManifest({
    mediaType: DOCKER_V2,
    config: { mediaType: CONTAINER_CONFIG, bytes: configV2("gguf") },
    layers: [
      { mediaType: `${O}model`, bytes: gguf },
      { mediaType: `${O}projector`, bytes: projector },
      { mediaType: `${O}template`, bytes: template },
      { mediaType: `${O}system`, bytes: system },
      { mediaType: `${O}params`, bytes: params },
      { mediaType: `${O}license`, bytes: license },
    ],
  });
  return {
    artifact,
    files: {
      "model.gguf": gguf,
      "model.mmproj": projector,
      template,
      system,
      params,
      LICENSE: license,
    },
    weights: ["model.gguf"],
  };
}

const TENSORS = [
  { name: "model.embed_tokens.weight", dtype: "BF16", shape: [4, 8], bytes: randomBytes(64) },
  { name: "model.norm.weight", dtype: "F32", shape: [8], bytes: randomBytes(32) },
  { name: "lm_head.weight", dtype: "Q8_0", shape: [2, 32], bytes: randomBytes(68) },
];

function tensorLayers(): Fixture {
  const config = text({ architectures: ["LlamaForCausalLM"], hidden_size: 8 });
  const template = text("{{ .Prompt }}");
  const tokenizer = text({ version: "1.0", model: { type: "BPE" } });
  const tokenizerConfig = text({ bos_token: "<s>" });
  const artifact = buildManifest({
    mediaType: DOCKER_V2,
    config: { mediaType: CONTAINER_CONFIG, bytes: configV2("safetensors") },
    layers: [
      { mediaType: `${O}config; type=safetensors`, bytes: config },
      { mediaType: `${O}template`, bytes: template },
      ...TENSORS.map((t) => ({
        mediaType: `${O}tensor; name=${t.name}; dtype=${t.dtype}; shape=${t.shape.join(",")}`,
        bytes: new Uint8Array(t.bytes),
      })),
      { mediaType: `${O}tokenizer`, bytes: tokenizer },
      { mediaType: `${O}tokenizer.config`, bytes: tokenizerConfig },
    ],
  });
  return {
    artifact,
    files: {
      config,
      template,
      ...Object.fromEntries(TENSORS.map((t) => [`tensors/${t.name}`, new Uint8Array(t.bytes)])),
      tokenizer,
      "tokenizer-2": tokenizerConfig,
    },
    weights: TENSORS.map((t) => `tensors/${t.name}`),
  };
}

describe("Ollama's shapes, against the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  const fixtures: Record<string, Fixture> = {};

  beforeAll(async () => {
    registry = await startRegistry();
    fixtures.legacy = await legacy();
    fixtures.tensors = tensorLayers();
    for (const [name, fixture] of Object.entries(fixtures))
      await push(registry, fixture.artifact, `ollama/${name}`, "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-ollama-"));
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(["legacy", "tensors"])("pulls the %s shape: file names, bytes, weights, info", async (name) => {
    const fixture = fixtures[name] as Fixture;
    const model = await pullModel(`${registry.host}/ollama/${name}:v1`, { store: createMemoryStore() });
    expect(model.format).toBe("ollama");
    expect(model.mediaType).toBe(DOCKER_V2);
    expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
    for (const [path, bytes] of Object.entries(fixture.files))
      expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
    expect(model.weights).toEqual(fixture.weights);
    expect(model.info).toEqual({
      format: name === "legacy" ? "gguf" : "safetensors",
      architecture: "llama",
      parameters: "1.2M",
      quantization: name === "legacy" ? "F16" : "BF16",
    });
  });

  it("indexes and reads the GGUF model layer's tensors", async () => {
    const model = await pullModel(`${registry.host}/ollama/legacy:v1`, { store: createMemoryStore() });
    const expected = JSON.parse(await readFile(join(FIXTURES, "expected.json"), "utf8")).files[
      "tiny-llama.gguf"
    ].tensors as { name: string; type: string; sha256: string }[];
    const index = await model.tensorIndex();
    expect([...index.keys()]).toEqual(expected.map((t) => t.name));
    for (const entry of index.values()) expect(entry.file).toBe("model.gguf");
    const first = expected[0] as { name: string; type: string; sha256: string };
    const bytes = await model.readTensor(first.name);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(first.sha256);
  });

  it("indexes per-tensor layers by their media type, reads each, and iterates them", async () => {
    const model = await pullModel(`${registry.host}/ollama/tensors:v1`, { store: createMemoryStore() });
    const index = await model.tensorIndex();
    expect([...index.values()]).toEqual(
      TENSORS.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        offset: 0,
        length: t.bytes.byteLength,
        file: `tensors/${t.name}`,
      })),
    );
    for (const t of TENSORS) expect(sameBytes(await model.readTensor(t.name), t.bytes), t.name).toBe(true);
    const seen: string[] = [];
    for await (const tensor of model.tensors()) {
      const t = TENSORS.find((x) => x.name === tensor.name);
      expect(sameBytes(await tensor.data(), t?.bytes as Uint8Array), tensor.name).toBe(true);
      seen.push(tensor.name);
    }
    expect(seen).toEqual(TENSORS.map((t) => t.name));
    // The same index from the registry, without a pull.
    const remote = await remoteTensorIndex(`${registry.host}/ollama/tensors:v1`);
    expect([...remote.values()]).toEqual([...index.values()]);
  });

  it("a config-only pull keeps the config, template and tokenizer, leaves out the tensors", async () => {
    const model = await pullModel(`${registry.host}/ollama/tensors:v1`, {
      store: createMemoryStore(),
      weights: false,
    });
    expect(model.complete).toBe(false);
    expect([...model.files.keys()].sort()).toEqual(["config", "template", "tokenizer", "tokenizer-2"]);
  });

  it.each(["legacy", "tensors"])(
    "oci-model pull --output writes the %s shape's files by name",
    async (name) => {
      const fixture = fixtures[name] as Fixture;
      const output = join(dir, `out-${name}`);
      const result = await cli([
        "pull",
        `${registry.host}/ollama/${name}:v1`,
        "--store",
        join(dir, "cli-store"),
        "--output",
        output,
        "--json",
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ format: "ollama", complete: true });
      expect(await filesUnder(output)).toEqual(Object.keys(fixture.files).sort());
      for (const [path, bytes] of Object.entries(fixture.files))
        expect(sameBytes(await readFile(join(output, path)), bytes), path).toBe(true);
    },
  );
});

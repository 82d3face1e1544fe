import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unpackTar } from "modern-tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createMemoryStore,
  createRegistryClient,
  type OciError,
  type PackFormat,
  packModel,
  pullModel,
  pushModel,
} from "../../src/index.js";
import { packFilesFromDirectory } from "../../src/node/index.js";
import { sameBytes } from "../support/layout.js";
import { isHttpUrlLine, readLine, run } from "../support/process.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";
import { shards } from "../support/tensor-model.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const creds = ["--creds", `${USER.username}:${USER.password}`];

const FOLDER: Record<string, Uint8Array> = {
  "model-00001-of-00002.safetensors": shards()[0] as Uint8Array,
  "model-00002-of-00002.safetensors": shards()[1] as Uint8Array,
  "config.json": new TextEncoder().encode(
    JSON.stringify({ architectures: ["TinyForCausalLM"], hidden_size: 16 }),
  ),
  "tokenizer.json": new TextEncoder().encode('{"model":{"type":"WordLevel"}}'),
  "chat_template.jinja": new TextEncoder().encode("{{ messages }}"),
  "README.md": new TextEncoder().encode("# tiny\n"),
};

async function skopeoRaw(registry: TestRegistry, repository: string): Promise<Record<string, unknown>> {
  const { stdout } = await run("skopeo", [
    "inspect",
    "--raw",
    "--tls-verify=false",
    ...creds,
    `docker://${registry.host}/${repository}`,
  ]);
  return JSON.parse(stdout);
}

describe("pack, push and serve", () => {
  let registry: TestRegistry;
  let dir: string;
  let folder: string;
  const credentials = () => ({ [registry.host]: USER });

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    dir = await mkdtemp(join(tmpdir(), "oml-pack-"));
    folder = join(dir, "model");
    await mkdir(folder);
    for (const [name, bytes] of Object.entries(FOLDER)) await writeFile(join(folder, name), bytes);
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each<[PackFormat, string[], string]>([
    [
      "docker-v0.1",
      [
        "application/vnd.docker.ai.safetensors",
        "application/vnd.docker.ai.safetensors",
        "application/vnd.docker.ai.vllm.config.tar",
      ],
      "application/vnd.docker.ai.model.config.v0.1+json",
    ],
    [
      "docker-v0.2",
      [
        "application/vnd.docker.ai.model.file",
        "application/vnd.docker.ai.model.file",
        "application/vnd.docker.ai.model.file",
        "application/vnd.docker.ai.safetensors",
        "application/vnd.docker.ai.safetensors",
        "application/vnd.docker.ai.model.file",
      ],
      "application/vnd.docker.ai.model.config.v0.2+json",
    ],
    [
      "modelpack",
      [
        "application/vnd.cncf.model.doc.v1.raw",
        "application/vnd.cncf.model.weight.config.v1.raw",
        "application/vnd.cncf.model.weight.config.v1.raw",
        "application/vnd.cncf.model.weight.v1.raw",
        "application/vnd.cncf.model.weight.v1.raw",
        "application/vnd.cncf.model.weight.config.v1.raw",
      ],
      "application/vnd.cncf.model.config.v1+json",
    ],
  ])(
    "packs %s, pushes it, skopeo reads it, and we pull it back byte for byte",
    async (format, layerTypes, configType) => {
      const store = createMemoryStore();
      const packed = await packModel(await packFilesFromDirectory(folder), { format, store });
      const repository = `private/${format.replace(".", "-")}`;
      await pushModel(store, packed.descriptor, `${registry.host}/${repository}:v1`, {
        credentials: credentials(),
      });

      const raw = await skopeoRaw(registry, `${repository}:v1`);
      expect((raw.config as { mediaType: string }).mediaType).toBe(configType);
      const layers = raw.layers as { mediaType: string; annotations?: Record<string, string> }[];
      expect(layers.map((l) => l.mediaType)).toEqual(layerTypes);
      if (format === "modelpack")
        expect(raw.artifactType).toBe("application/vnd.cncf.model.manifest.v1+json");
      if (format !== "docker-v0.1") {
        expect(layers.map((l) => l.annotations?.["org.cncf.model.filepath"]).sort()).toEqual(
          Object.keys(FOLDER).sort(),
        );
      } else {
        // the config tar, as skopeo copies it out: sorted, mode 0644, mtime 0, no owner
        const out = join(dir, "copied-v01");
        await run("skopeo", [
          "copy",
          "--quiet",
          "--src-tls-verify=false",
          ...creds.map((c) => c.replace("--creds", "--src-creds")),
          `docker://${registry.host}/${repository}:v1`,
          `oci:${out}:v1`,
        ]);
        const tarLayer = layers.at(-1) as unknown as { digest: string };
        const tar = await readFile(join(out, "blobs", "sha256", tarLayer.digest.slice(7)));
        const entries = await unpackTar(tar, { strict: true });
        expect(entries.map((e) => e.header.name)).toEqual([
          "README.md",
          "chat_template.jinja",
          "config.json",
          "tokenizer.json",
        ]);
        for (const e of entries)
          expect([e.header.mode, e.header.mtime?.getTime(), e.header.uid]).toEqual([0o644, 0, 0]);
      }

      const model = await pullModel(`${registry.host}/${repository}:v1`, {
        store: createMemoryStore(),
        credentials: credentials(),
      });
      expect(model.digest).toBe(packed.descriptor.digest);
      for (const [name, bytes] of Object.entries(FOLDER))
        expect(sameBytes(new Uint8Array(await model.file(name).arrayBuffer()), bytes), name).toBe(true);
      expect(model.weights).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
      expect(model.info.format).toBe("safetensors");
    },
  );

  it.each([
    ["in one streamed request by default (Node): the PUT that ends the upload", undefined, 0],
    ["PATCH by PATCH with chunkSize, the last piece in the PUT", 1024 * 1024, 3],
  ] as const)("uploads a stream %s; the registry verifies it", async (_, chunkSize, patches) => {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) & 0xff);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const blob = { digest, size: bytes.byteLength };
    const methods: string[] = [];
    const fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input).includes("/blobs/uploads/")) methods.push(init?.method ?? "GET");
      return globalThis.fetch(input, init);
    }) as typeof globalThis.fetch;
    const client = createRegistryClient({ credentials: credentials(), fetch });
    const repository = `${registry.host}/private/streamed-${patches}`;
    const progress: number[] = [];
    const source = new Blob([bytes]).stream();
    expect(
      await client.pushBlob(repository, blob, source, {
        ...(chunkSize ? { chunkSize } : {}),
        onProgress: (n) => progress.push(n),
      }),
    ).toBe(true);
    expect(methods).toEqual(["POST", ...Array(patches).fill("PATCH"), "PUT"]);
    expect(progress.at(-1)).toBe(bytes.byteLength);
    const back = new Uint8Array(await new Response(await client.fetchBlob(repository, blob)).arrayBuffer());
    expect(sameBytes(back, bytes)).toBe(true);
  });

  it("refuses a stream whose bytes do not match the digest, and the registry keeps nothing", async () => {
    const bytes = new Uint8Array(2 * 1024 * 1024).fill(3);
    const blob = {
      digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
      size: bytes.byteLength,
    };
    const client = createRegistryClient({ credentials: credentials() });
    const repository = `${registry.host}/private/streamed-wrong`;
    const wrong = bytes.slice();
    wrong[12345] = 4;
    const error = await client
      .pushBlob(repository, blob, new Blob([wrong]).stream())
      .catch((e: OciError) => e);
    expect((error as OciError).code).toBe("DIGEST_MISMATCH");
    expect(await client.blobExists(repository, blob)).toBe(false);
  });

  it("packs deterministically, and a second push uploads no blob", async () => {
    const files = await packFilesFromDirectory(folder);
    const a = await packModel(files, { format: "modelpack", store: createMemoryStore() });
    const store = createMemoryStore();
    const b = await packModel(files, { format: "modelpack", store });
    expect(b.descriptor.digest).toBe(a.descriptor.digest);
    const ref = `${registry.host}/private/twice:v1`;
    const uploads: string[] = [];
    const manifestPuts: string[] = [];
    const fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      if (["POST", "PATCH", "PUT"].includes(init?.method ?? "") && String(input).includes("/blobs/uploads/"))
        uploads.push(String(input));
      if (init?.method === "PUT" && String(input).includes("/manifests/"))
        manifestPuts.push(String(input).split("/manifests/")[1] ?? "");
      return globalThis.fetch(input, init);
    }) as typeof globalThis.fetch;
    const first = await pushModel(store, b.descriptor, ref, { credentials: credentials(), fetch });
    expect(first.uploaded).toBe(b.manifest.layers.length + 1);
    // The root goes up once, under its tag (as docker and skopeo push it), and is known by both.
    expect(manifestPuts).toEqual(["v1"]);
    const client = createRegistryClient({ credentials: credentials() });
    expect((await client.headManifest(`${registry.host}/private/twice@${b.descriptor.digest}`))?.digest).toBe(
      b.descriptor.digest,
    );
    uploads.length = 0;
    const second = await pushModel(store, b.descriptor, ref, { credentials: credentials(), fetch });
    expect(second).toMatchObject({ uploaded: 0, skipped: b.manifest.layers.length + 1 });
    expect(uploads).toEqual([]);
  });

  it("writes a layout with `oci-model pack --layout` that skopeo pushes and we pull", async () => {
    const layout = join(dir, "packed-layout");
    const packed = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [CLI, "pack", folder, "--layout", `${layout}:tiny-v1`, "--format", "docker-v0.2", "--json"],
        (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout)),
      ),
    );
    const { digest } = JSON.parse(packed);
    await run("skopeo", [
      "copy",
      "--quiet",
      "--preserve-digests",
      "--dest-tls-verify=false",
      ...creds.map((c) => c.replace("--creds", "--dest-creds")),
      `oci:${layout}:tiny-v1`,
      `docker://${registry.host}/private/from-layout:v1`,
    ]);
    const model = await pullModel(`${registry.host}/private/from-layout:v1`, {
      store: createMemoryStore(),
      credentials: credentials(),
    });
    expect(model.digest).toBe(digest);
    expect(await model.file("config.json").json()).toMatchObject({ hidden_size: 16 });
  });

  it("serves a layout skopeo wrote; skopeo and our pull read it through `oci-model serve`", async () => {
    const store = createMemoryStore();
    const packed = await packModel(await packFilesFromDirectory(folder), { store });
    await pushModel(store, packed.descriptor, `${registry.host}/private/served:v1`, {
      credentials: credentials(),
    });
    const layout = join(dir, "skopeo-layout");
    await run("skopeo", [
      "copy",
      "--quiet",
      "--preserve-digests",
      "--src-tls-verify=false",
      "--src-creds",
      `${USER.username}:${USER.password}`,
      `docker://${registry.host}/private/served:v1`,
      `oci:${layout}:served`,
    ]);
    const child = spawn(process.execPath, [CLI, "serve", layout, "--port", "0"]);
    try {
      const url = await readLine(child, isHttpUrlLine);
      const host = new URL(url).host;
      const out = join(dir, "from-serve");
      await run("skopeo", [
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        `docker://${host}/any/name:served`,
        `oci:${out}:x`,
      ]);
      const index = JSON.parse(await readFile(join(out, "index.json"), "utf8"));
      expect(index.manifests[0].digest).toBe(packed.descriptor.digest);
      const model = await pullModel(`${host}/whatever:served`, { store: createMemoryStore() });
      expect(model.digest).toBe(packed.descriptor.digest);
      for (const [name, bytes] of Object.entries(FOLDER))
        expect(sameBytes(new Uint8Array(await model.file(name).arrayBuffer()), bytes), name).toBe(true);
      const put = await fetch(`${url}/v2/x/manifests/served`, { method: "PUT", body: "{}" });
      expect(put.status).toBe(405);
      const range = await fetch(`${url}/v2/x/blobs/${packed.manifest.layers[0]?.digest}`, {
        headers: { range: "bytes=0-7" },
      });
      expect(range.status).toBe(206);
      expect((await range.arrayBuffer()).byteLength).toBe(8);
    } finally {
      child.kill("SIGTERM");
    }
  });
});

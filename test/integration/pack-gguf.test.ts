// `oci-model pack` of a GGUF model in the shape `docker model package` writes (issue 17): packed by the
// built CLI with a projector, a chat template and two licenses, pushed to CNCF Distribution, read back
// by skopeo (the manifest as the registry holds it, and a copy into an OCI layout) and by pullModel.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, pullModel } from "../../src/index.js";
import { ggufFixture, kv, writeGguf } from "../support/gguf.js";
import { sameBytes } from "../support/layout.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const ENV = { PATH: process.env.PATH ?? "", HOME: "/nonexistent" };
const encoder = new TextEncoder();

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: ENV }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

const TINY = ggufFixture("tiny-llama.gguf");
const PROJECTOR = ggufFixture("aligned.gguf");
const TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}";
const MIT = encoder.encode("MIT License\n");
const APACHE = encoder.encode("Apache License 2.0\n");

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}
interface RawManifest {
  schemaVersion: number;
  mediaType: string;
  artifactType?: string;
  config: Layer;
  layers: Layer[];
}

describe("oci-model pack of a GGUF model, as docker model package packs it, against the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  let folder: string;
  let extras: string;

  beforeAll(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), "oml-pack-gguf-"));
    folder = join(dir, "tiny");
    extras = join(dir, "extras");
    await mkdir(folder);
    await mkdir(extras);
    await writeFile(join(folder, "tiny-llama.gguf"), TINY);
    await writeFile(join(folder, "README.md"), "# tiny llama\n");
    await writeFile(join(extras, "mmproj-tiny-f16.gguf"), PROJECTOR);
    await writeFile(join(extras, "chat.jinja"), TEMPLATE);
    await writeFile(join(extras, "LICENSE-MIT"), MIT);
    await writeFile(join(extras, "LICENSE-APACHE"), APACHE);
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const extraFlags = () => [
    "--mmproj",
    join(extras, "mmproj-tiny-f16.gguf"),
    "--chat-template",
    join(extras, "chat.jinja"),
    "--license",
    join(extras, "LICENSE-MIT"),
    "--license",
    join(extras, "LICENSE-APACHE"),
    "--context-size",
    "4096",
  ];

  it("pushes it; skopeo reads Model Runner's manifest, layers and config; pullModel gives Model Runner's files", async () => {
    const ref = `${registry.host}/ai/tiny-llama:q8`;
    const packed = await cli(["pack", folder, ref, ...extraFlags(), "--json"]);
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.stderr).toMatch(/left out README\.md: a GGUF model in Docker Model Runner's shape/);
    const { digest, omitted } = JSON.parse(packed.stdout) as { digest: string; omitted: string[] };
    expect(omitted).toEqual(["README.md"]);

    // the manifest as the registry holds it, read by skopeo
    const { stdout: raw } = await run(
      "skopeo",
      ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`],
      { encoding: "buffer" },
    );
    expect(sha256(new Uint8Array(raw))).toBe(digest);
    const manifest = JSON.parse(raw.toString("utf8")) as RawManifest;
    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.artifactType).toBeUndefined();
    expect(manifest.config.mediaType).toBe("application/vnd.docker.ai.model.config.v0.1+json");
    const inOrder: [string, string, Uint8Array][] = [
      ["application/vnd.docker.ai.gguf.v3", "model.gguf", TINY],
      ["application/vnd.docker.ai.license", "LICENSE", MIT],
      ["application/vnd.docker.ai.license", "LICENSE-2", APACHE],
      ["application/vnd.docker.ai.chat.template.jinja", "template.jinja", encoder.encode(TEMPLATE)],
      ["application/vnd.docker.ai.mmproj", "model.mmproj", PROJECTOR],
    ];
    expect(
      manifest.layers.map((l) => [l.mediaType, l.annotations?.["org.cncf.model.filepath"], l.digest, l.size]),
    ).toEqual(inOrder.map(([type, name, bytes]) => [type, name, sha256(bytes), bytes.byteLength]));
    for (const l of manifest.layers) {
      expect(l.annotations?.["org.cncf.model.file.mediatype.untested"]).toBe("false");
      expect(JSON.parse(l.annotations?.["org.cncf.model.file.metadata+json"] ?? "{}")).toMatchObject({
        name: l.annotations?.["org.cncf.model.filepath"],
        size: l.size,
        mtime: "1970-01-01T00:00:00Z",
      });
    }

    // skopeo copies it into an OCI layout: every blob there, the config as Model Runner reads it
    const layout = join(dir, "copied");
    await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${layout}:q8`]);
    const blob = (d: string) => readFile(join(layout, "blobs", "sha256", d.slice("sha256:".length)));
    for (const [i, [, , bytes]] of inOrder.entries())
      expect(sameBytes(new Uint8Array(await blob(manifest.layers[i]?.digest ?? "")), bytes)).toBe(true);
    const config = JSON.parse((await blob(manifest.config.digest)).toString("utf8")) as {
      config: Record<string, unknown> & { gguf: Record<string, string> };
      rootfs: { type: string; diff_ids: string[] };
    };
    expect(config.config).toMatchObject({
      format: "gguf",
      quantization: "Q8_0",
      parameters: "4.25K",
      architecture: "llama",
      size: "5.84KiB",
      context_size: 4096,
    });
    expect(config.config.gguf["general.name"]).toBe("tiny-llama");
    expect(config.config.gguf["llama.context_length"]).toBe("2048");
    expect(config.rootfs).toEqual({ type: "rootfs", diff_ids: manifest.layers.map((l) => l.digest) });

    // pullModel: the files Model Runner unpacks, the weight, the info, the chat template
    const model = await pullModel(ref, { store: createMemoryStore() });
    expect(model.digest).toBe(digest);
    expect(model.format).toBe("docker-v0.1");
    expect([...model.files.keys()].sort()).toEqual([
      "LICENSE",
      "LICENSE-2",
      "model.gguf",
      "model.mmproj",
      "template.jinja",
    ]);
    for (const [, name, bytes] of inOrder)
      expect(sameBytes(new Uint8Array(await model.file(name).arrayBuffer()), bytes), name).toBe(true);
    expect(model.weights).toEqual(["model.gguf"]);
    expect(model.info).toMatchObject({
      format: "gguf",
      quantization: "Q8_0",
      architecture: "llama",
      parameters: "4.25K",
      contextSize: 4096,
    });
    expect(model.info.gguf?.["general.name"]).toBe("tiny-llama");
    expect(await model.chatTemplate()).toBe(TEMPLATE);
  });

  it("packs the same model to the same digest from the folder or the GGUF file, whatever the mtimes", async () => {
    const first = await cli(["pack", folder, "--layout", `${join(dir, "layout-a")}:v1`, ...extraFlags()]);
    await writeFile(join(folder, "tiny-llama.gguf"), TINY); // a new mtime
    const second = await cli([
      "pack",
      join(folder, "tiny-llama.gguf"),
      "--layout",
      `${join(dir, "layout-b")}:v1`,
      ...extraFlags(),
    ]);
    expect([first.code, second.code], first.stderr + second.stderr).toEqual([0, 0]);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toBe(""); // the file alone: nothing left out
  });

  it("packs a split model from its first part: every part, in order, named as Model Runner names them", async () => {
    const split = join(dir, "split");
    await mkdir(split);
    const part = (no: number) =>
      writeGguf({
        kvs: [
          kv.str("general.architecture", "llama"),
          kv.u32("general.file_type", 7),
          { key: "split.no", type: 2, payload: Uint8Array.of(no, 0) },
        ],
        tensors: [{ name: `blk.${no}.attn_q.weight`, ne: [256], type: 8, bytes: 272 }],
      });
    const parts = [part(0), part(1)];
    await writeFile(join(split, "tiny-00001-of-00002.gguf"), parts[0] as Uint8Array);
    await writeFile(join(split, "tiny-00002-of-00002.gguf"), parts[1] as Uint8Array);
    const ref = `${registry.host}/ai/tiny-split:q8`;
    const packed = await cli(["pack", join(split, "tiny-00001-of-00002.gguf"), ref, "--json"]);
    expect(packed.code, packed.stderr).toBe(0);
    const { layers } = JSON.parse(packed.stdout) as { layers: Layer[] };
    expect(layers.map((l) => [l.annotations?.["org.cncf.model.filepath"], l.digest])).toEqual([
      ["model-00001-of-00002.gguf", sha256(parts[0] as Uint8Array)],
      ["model-00002-of-00002.gguf", sha256(parts[1] as Uint8Array)],
    ]);
    const model = await pullModel(ref, { store: createMemoryStore() });
    expect(model.weights).toEqual(["model-00001-of-00002.gguf", "model-00002-of-00002.gguf"]);
    expect(model.info).toMatchObject({ quantization: "Q8_0", parameters: "512" });

    await rm(join(split, "tiny-00002-of-00002.gguf"));
    const layout = join(dir, "not-packed-split");
    const missing = await cli(["pack", join(split, "tiny-00001-of-00002.gguf"), "--layout", `${layout}:x`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      "oci-model pack: INVALID_ARGUMENT: Cannot pack tiny-00001-of-00002.gguf: shard tiny-00002-of-00002.gguf is missing; a split GGUF model needs all 2 parts\n",
    );
    await expect(stat(layout)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    [
      "a chat template that is not text",
      ["--chat-template", "BINARY"],
      /Cannot pack bad\.jinja: a chat template must be Jinja text, and it is not UTF-8/,
    ],
    [
      "a context size that is not a number",
      ["--context-size", "lots"],
      /Cannot pack: --context-size must be a whole number of tokens, not "lots"/,
    ],
    [
      "a context size of 0",
      ["--context-size", "0"],
      /Cannot pack: the context size must be a whole number of tokens from 1 to 2147483647, not 0/,
    ],
    [
      "a projector that is not GGUF",
      ["--mmproj", "README"],
      /Cannot pack README\.md: a multimodal projector must be a GGUF file/,
    ],
  ])("refuses %s with INVALID_ARGUMENT and writes no layout", async (_, flags, message) => {
    await writeFile(join(extras, "bad.jinja"), Uint8Array.of(0x7b, 0x7b, 0xc3, 0x28, 0x7d, 0x7d));
    const args = flags.map((f) =>
      f === "BINARY" ? join(extras, "bad.jinja") : f === "README" ? join(folder, "README.md") : f,
    );
    const layout = join(dir, `refused-${flags.join("-").replace(/[^a-z0-9]/gi, "")}`);
    const result = await cli(["pack", folder, "--layout", `${layout}:x`, ...args]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^oci-model pack: INVALID_ARGUMENT: /);
    expect(result.stderr).toMatch(message);
    await expect(stat(layout)).rejects.toThrow(/ENOENT/);
  });
});

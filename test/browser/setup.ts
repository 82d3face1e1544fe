import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { createMemoryStore, packModel, pushModel } from "../../src/index.js";
import { packFilesFromDirectory, serveRegistryProxy } from "../../src/node/index.js";
import { ggufFixture } from "../support/gguf.js";
import { pushWithSkopeo, sampleModel } from "../support/layout.js";
import { dockerGgufBundle, dockerV01 } from "../support/models.js";
import { run } from "../support/process.js";
import { startRegistry, USER } from "../support/registry.js";
import { shards } from "../support/tensor-model.js";

/** What the browser tests get from the Node side: a real registry with token auth, and our proxy in front. */
export interface BrowserBed {
  registryHost: string;
  proxyUrl: string;
  user: { username: string; password: string };
  repository: string;
  manifestDigest: string;
  /** A model with F32, F16, BF16 and I32 tensors (test/support/tensor-model.ts), public. */
  tensorModel: string;
  /** A model whose weights are a PyTorch `.bin` written by real torch.save, and the values torch reports. */
  torchModel: string;
  torchExpected: Record<string, { dtype: string; shape: number[]; values: number[] }>;
  /**
   * Docker Model Runner's unannotated GGUF bundle (test/support/models.ts `dockerGgufBundle`), public,
   * its shards `tiny-llama.gguf` and `aligned.gguf` and its projector `large.gguf` of
   * test/fixtures/gguf, and the names and sizes a pull must give its files.
   */
  ggufModel: string;
  ggufFiles: Record<string, number>;
  ggufTemplate: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    bed: BrowserBed;
  }
}

export default async function setup(project: TestProject) {
  const registry = await startRegistry({ auth: "token" });
  const model = sampleModel({ shardSize: 2 * 1024 * 1024 });
  await pushWithSkopeo(registry, model, "private/tiny", "v1");
  const tensors = await dockerV01(shards());
  await pushWithSkopeo(registry, tensors.artifact, "public/tensors", "v1");
  const dir = await mkdtemp(join(tmpdir(), "oml-browser-torch-"));
  await run("/usr/bin/python3", [join(import.meta.dirname, "../support/checkpoints.py"), dir], {
    timeout: 120_000,
  });
  const folder = join(dir, "model");
  await mkdir(folder);
  await copyFile(join(dir, "model.bin"), join(folder, "pytorch_model.bin"));
  const packStore = createMemoryStore();
  const packed = await packModel(await packFilesFromDirectory(folder), {
    format: "docker-v0.2",
    store: packStore,
  });
  await pushModel(packStore, packed.descriptor, `${registry.host}/public/torch:v1`, {
    credentials: { [registry.host]: USER },
  });
  const gguf = dockerGgufBundle({
    shards: [ggufFixture("tiny-llama.gguf"), ggufFixture("aligned.gguf")],
    mmproj: ggufFixture("large.gguf"),
  });
  await pushWithSkopeo(registry, gguf.artifact, "public/gguf-bundle", "v1");
  const torchExpected = JSON.parse(await readFile(join(dir, "model.json"), "utf8"));
  await rm(dir, { recursive: true, force: true });
  const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
  project.provide("bed", {
    registryHost: registry.host,
    proxyUrl: proxy.url,
    user: { ...USER },
    repository: "private/tiny",
    manifestDigest: model.descriptor.digest,
    tensorModel: `${registry.host}/public/tensors:v1`,
    torchModel: `${registry.host}/public/torch:v1`,
    torchExpected,
    ggufModel: `${registry.host}/public/gguf-bundle:v1`,
    ggufFiles: Object.fromEntries(
      Object.entries(gguf.files).map(([path, bytes]) => [path, bytes.byteLength]),
    ),
    ggufTemplate: gguf.chatTemplate as string,
  });
  return async () => {
    await proxy.close();
    await registry.stop();
  };
}

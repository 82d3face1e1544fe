import type { TestProject } from "vitest/node";
import { serveRegistryProxy } from "../../src/node/index.js";
import { pushWithSkopeo, sampleModel } from "../support/layout.js";
import { dockerV01 } from "../support/models.js";
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
  const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
  project.provide("bed", {
    registryHost: registry.host,
    proxyUrl: proxy.url,
    user: { ...USER },
    repository: "private/tiny",
    manifestDigest: model.descriptor.digest,
    tensorModel: `${registry.host}/public/tensors:v1`,
  });
  return async () => {
    await proxy.close();
    await registry.stop();
  };
}

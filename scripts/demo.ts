// The demo until the Vite page lands (issue 8): start a real registry (CNCF Distribution with token
// auth), push a sample model into it with skopeo, then inspect it and pull every layer through the
// library, verified byte for byte, and show a tampered blob being refused.
// Run: npm run demo   (set KEEP=1 to leave the registry running for `oci-model inspect`).
import { readFile, writeFile } from "node:fs/promises";
import { createRegistryClient, inspectModel, isOciError } from "../src/index.js";
import { createNodeHasher } from "../src/node/index.js";
import { pushWithSkopeo, sampleModel } from "../test/support/layout.js";
import { startRegistry } from "../test/support/registry.js";

const MiB = 1024 * 1024;
const say = (text: string) => process.stdout.write(`${text}\n`);

const registry = await startRegistry({ auth: "token" });
try {
  const ref = `${registry.host}/public/sample-model:v1`;
  say(`Registry (CNCF Distribution, token auth) on http://${registry.host}`);
  await pushWithSkopeo(registry, sampleModel({ shardSize: 64 * MiB }), "public/sample-model", "v1");
  say(`Pushed a sample model with skopeo: ${ref}\n`);

  const client = createRegistryClient({ createHasher: createNodeHasher });
  const summary = await inspectModel(ref, { client });
  say(`${summary.format} model ${summary.digest}`);
  for (const layer of summary.layers) {
    const started = performance.now();
    let shown = -1;
    const stream = await client.fetchBlob(ref, layer, {
      onProgress: (bytes) => {
        const percent = Math.floor((bytes / layer.size) * 100);
        if (!process.stdout.isTTY || percent === shown) return;
        shown = percent;
        process.stdout.write(`\r  ${layer.path ?? layer.mediaType}: ${percent}%`);
      },
    });
    let bytes = 0;
    for await (const chunk of stream) bytes += chunk.byteLength;
    const seconds = (performance.now() - started) / 1000;
    say(
      `\r  ${layer.path ?? layer.mediaType}: ${bytes} bytes verified (${(bytes / MiB / seconds).toFixed(0)} MiB/s)`,
    );
  }

  const victim = summary.layers[1];
  if (victim) {
    const path = registry.blobPath(victim.digest);
    const bytes = await readFile(path);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    try {
      for await (const _ of await client.fetchBlob(ref, victim)) {
      }
      say("\nA tampered blob was accepted: this is a bug.");
      process.exitCode = 1;
    } catch (error) {
      say(
        `\nOne byte flipped in the registry's storage, then fetched again:\n  ${isOciError(error) ? `${error.code}: ${error.message}` : error}`,
      );
    }
  }
  if (process.env.KEEP) {
    say(`\nRegistry left running: npx oci-model inspect ${ref}   (Ctrl-C to stop)`);
    await new Promise((resolve) => process.once("SIGINT", resolve));
  }
} finally {
  await registry.stop();
}

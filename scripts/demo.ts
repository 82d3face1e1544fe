// The demo until the Vite page lands (issue 8): start a real registry (CNCF Distribution with token
// auth), push a model into it with skopeo, pull it through the library into an OCI-layout store
// (verified, resumable), list its files, then show a tampered blob being refused.
// Run: npm run demo   (KEEP=1 leaves the registry running for `npx oci-model pull`).
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isOciError, pullModel } from "../src/index.js";
import { createFsStore, createNodeHasher } from "../src/node/index.js";
import { pushWithSkopeo } from "../test/support/layout.js";
import { dockerV01 } from "../test/support/models.js";
import { startRegistry } from "../test/support/registry.js";

const MiB = 1024 * 1024;
const say = (text: string) => process.stdout.write(`${text}\n`);

const registry = await startRegistry({ auth: "token" });
const dir = await mkdtemp(join(tmpdir(), "oci-model-demo-"));
try {
  const ref = `${registry.host}/public/demo-model:v1`;
  say(`Registry (CNCF Distribution, token auth) on http://${registry.host}`);
  const fixture = await dockerV01([randomBytes(48 * MiB), randomBytes(16 * MiB)]);
  await pushWithSkopeo(registry, fixture.artifact, "public/demo-model", "v1");
  say(`Pushed a Docker model-spec v0.1 model with skopeo: ${ref}\n`);

  const store = createFsStore(join(dir, "store"));
  let shown = -1;
  const model = await pullModel(ref, {
    store,
    createHasher: createNodeHasher,
    onProgress: (event) => {
      if (event.type === "resolve")
        say(
          `${event.format} model ${event.digest}: ${event.layers} blobs, ${(event.totalBytes / MiB).toFixed(1)} MiB`,
        );
      if (event.type === "progress" && process.stdout.isTTY) {
        const percent = Math.floor((event.overallLoaded / event.overallTotal) * 100);
        if (percent !== shown) process.stdout.write(`\r  pulling… ${percent}%`);
        shown = percent;
      }
      if (event.type === "done")
        say(`${process.stdout.isTTY ? "\r" : ""}  pulled and verified in ${event.seconds.toFixed(2)} s`);
    },
  });
  for (const [path, file] of model.files)
    say(`  ${path.padEnd(36)} ${String(file.size).padStart(10)} bytes${file.weight ? "  (weights)" : ""}`);
  say(`  config.json: ${JSON.stringify(await model.file("config.json").json())}`);

  const victim = [...fixture.artifact.blobs.keys()][2] as string;
  const path = registry.blobPath(victim);
  const bytes = await readFile(path);
  bytes[0] = (bytes[0] ?? 0) ^ 0xff;
  await writeFile(path, bytes);
  try {
    await pullModel(ref, { store: createFsStore(join(dir, "second")) });
    say("\nA tampered blob was accepted: this is a bug.");
    process.exitCode = 1;
  } catch (error) {
    say(
      `\nOne byte flipped in the registry's storage, then pulled into an empty store:\n  ${isOciError(error) ? `${error.code}: ${error.message}` : error}`,
    );
  }
  if (process.env.KEEP) {
    say(`\nRegistry left running: npx oci-model pull ${ref}   (Ctrl-C to stop)`);
    await new Promise((resolve) => process.once("SIGINT", resolve));
  }
} finally {
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
}

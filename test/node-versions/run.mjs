// `npm run test:node-versions` (the last step of `npm test`): the unit project and the integration files
// that run the library's Node code paths, again on Node 22 and on Node 24 (`npm test`'s own run is on
// the machine's Node: 20 in CI). The binaries are the `node` npm package's, installed in this folder
// from its own lockfile: each links a bin named `node`, which in the root's node_modules/.bin would
// take the place of the machine's Node under every npm script.
//
// The two versions run at the same time (each run's integration files mostly wait on the registry and
// on the processes they start); each run's output is printed whole when it ends. With two suites on
// the machine's cores, the unit project gets the integration project's 30 s limit for a test that hangs
// (Vitest's default 5 s was hit by CPU-heavy unit tests, zstd and zip inflation, when the machine is busy).
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "../..");
const VERSIONS = [22, 24];

// Integration files whose code paths are Node's own: node:fs, node:crypto, child processes and the
// HTTP server (src/node: the fs store, the CLI, the proxy server), and fetch (undici) and web streams
// against the real registry (token and Basic auth, redirects, resumed pulls and pushes).
// Not run again: where Node only starts the runtime that does the work (browser-*, page-reload,
// firefox, demo: Chromium or Firefox; deno-bun; wrangler: workerd); where Node's part is the same
// code as in files above (anonymous, cli-progress, cli-tensors, zstd, formats, gguf, ollama, pack*,
// tar-layers, hostile-paths, client-coverage); Python-written checkpoints (the zip reading is in the unit
// project); and the timed runs (soak, ranges: a WAN-shaped link).
const INTEGRATION = [
  "node-versions", // the Node it runs on is the one asked for, and the one a child `node` gets
  "imports",
  "auth",
  "pull",
  "push-resume",
  "proxy",
  "fs-store",
  "fs-processes",
  "cli",
  "cli-pull",
  "cli-transfer",
  "cli-credentials",
].map((name) => `test/integration/${name}.test.ts`);

// Tests left out on these versions, each with its reason (printed): none at present.
const LEFT_OUT = [];

const literal = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const binary = (major) => join(HERE, `node_modules/node${major}/bin/node`);

if (VERSIONS.some((major) => !existsSync(binary(major)))) {
  console.log(
    `test:node-versions: installing Node ${VERSIONS.join(" and ")} (test/node-versions/package-lock.json)`,
  );
  const install = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: HERE, stdio: "inherit" });
  if (install.status !== 0) process.exit(install.status ?? 1);
}
// dist/ once, before the runs: each run's global setup then finds it up to date and writes nothing.
const build = spawnSync("npx", ["tsc", "-b", "src/node"], { cwd: ROOT, stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

function runOn(major) {
  const node = binary(major);
  const args = [
    join(ROOT, "node_modules/vitest/vitest.mjs"),
    "run",
    "--project",
    "unit",
    "--project",
    "integration",
    "--testTimeout",
    "30000",
    ...(LEFT_OUT.length
      ? ["--testNamePattern", `^(?!.*(${LEFT_OUT.map((t) => literal(t.name)).join("|")}))`]
      : []),
    "test/unit/",
    ...INTEGRATION,
  ];
  const started = Date.now();
  const child = spawn(node, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    // Processes the tests start by name (npx, node) run on this version too.
    env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}`, OML_EXPECT_NODE: String(major) },
  });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk) => {
    output += chunk;
  });
  return new Promise((resolve) => {
    child.on("close", (code) => {
      const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim();
      const seconds = Math.round((Date.now() - started) / 1000);
      console.log(
        `\n──── Node ${version}: the unit project and ${INTEGRATION.length} integration files ────\n`,
      );
      for (const { name, reason } of LEFT_OUT) console.log(`left out "${name}": ${reason}`);
      console.log(output);
      resolve({ version, ok: code === 0, seconds });
    });
  });
}

const results = await Promise.all(VERSIONS.map(runOn));
for (const { version, ok, seconds } of results)
  console.log(`test:node-versions: Node ${version} ${ok ? "passed" : "FAILED"} in ${seconds} s`);
process.exit(results.every((r) => r.ok) ? 0 : 1);

// npm run bench [-- --quick] (builds dist/ first: the measured processes run plain Node over it): benchmarks, each against a baseline measured in the same run.
// Writes bench/results/latest.json as [{ name, value, unit, baseline, ratio }].
// --only=SECTION[,SECTION] runs only those: node-pull, resume, push, tar-layers, wan (or one of
// wan-node, wan-push, wan-browser), browser-pull, upload, fs-store.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createRegistryClient, pullModel } from "../src/index.js";
import { createFsStore, createNodeHasher } from "../src/node/index.js";
import { startFaultProxy } from "../test/support/fault-proxy.js";
import { startRegistry } from "../test/support/registry.js";
import { runBrowserPullBench } from "./browser-pull.js";
import { runTarLayerRows } from "./tar-layers.js";
import { runWanBrowserRows, runWanNodeRows, runWanPushRows, WAN } from "./wan.js";
import { runUploadBench } from "./webgpu-upload.js";

const run = promisify(execFile);
const quick = process.argv.includes("--quick");
const cores = availableParallelism();
const GiB = 1024 * 1024 * 1024;
const sizes = quick ? [256 * 1024 * 1024] : [256 * 1024 * 1024, GiB, 4 * GiB];
const ROUNDS = quick ? 1 : 3;
const only = process.argv
  .find((a) => a.startsWith("--only="))
  ?.slice(7)
  .split(",");
const want = (section: string) => only === undefined || only.includes(section);

interface Sample {
  seconds: number;
  gbps: number;
  rssMiB: number;
}
interface Row {
  name: string;
  value: number;
  unit: string;
  baseline: number;
  ratio: number;
}

async function measure(mode: string, size: number): Promise<Sample> {
  const script = join(import.meta.dirname, "fs-store-memory.mjs");
  await run("sync"); // the previous run's writeback must not land on this one
  const { stdout } = await run(process.execPath, [script, mode, String(size)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Sample;
}

/** Writes a SIZE-byte model as an OCI layout in DIR (tagged v1). */
async function makeLayout(dir: string, size: number): Promise<void> {
  await run(process.execPath, [
    "--import",
    "tsx",
    join(import.meta.dirname, "make-layout.ts"),
    dir,
    String(size),
  ]);
}

/** Writes a SIZE-byte model as an OCI layout in DIR and pushes it to TARGET with skopeo. */
async function modelInRegistry(dir: string, size: number, target: string): Promise<void> {
  await makeLayout(dir, size);
  await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${dir}:v1`, `docker://${target}`]);
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

const rows: Row[] = [];
const add = (name: string, unit: string, value: number, baseline: number) =>
  rows.push({ name, value, unit, baseline, ratio: value / baseline });
// Pull into an OCI layout on disk: ours against skopeo copy, and against curl piped into a hasher (no
// storage): sha256sum (what the issue named) and openssl (SHA-NI, the real download + hash limit);
// and curl | tee FILE | openssl, the whole job (download, store, hash) by C tools; and Node's own fetch
// + node:crypto (no storage), the floor of any fetch-based pull in Node, in time and in peak RSS.
for (const size of want("node-pull") ? sizes : []) {
  const registry = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-pull-"));
  try {
    await modelInRegistry(join(dir, "source"), size, `${registry.host}/bench/pull:v1`);
    const index = JSON.parse(await readFile(join(dir, "source", "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    const manifest = JSON.parse(
      await readFile(
        join(dir, "source", "blobs", "sha256", (index.manifests[0]?.digest ?? "").slice(7)),
        "utf8",
      ),
    ) as { layers: { digest: string; size: number }[] };
    const biggest = [...manifest.layers].sort((a, b) => b.size - a.size)[0]?.digest ?? "";
    const blobUrl = `http://${registry.host}/v2/bench/pull/blobs/${biggest}`;
    const samples: Record<string, Sample[]> = {
      ours: [],
      skopeo: [],
      curl: [],
      "curl-openssl": [],
      "curl-tee-openssl": [],
      "node-fetch": [],
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of Object.keys(samples)) {
        const target = join(dir, `${mode}-${round}`);
        await run("sync"); // the previous run's writeback must not land on this one
        const { stdout } = await run(process.execPath, [
          join(import.meta.dirname, "pull-model.mjs"),
          mode,
          `${registry.host}/bench/pull:v1`,
          target,
          blobUrl,
        ]);
        const sample = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as {
          seconds: number;
          rssMiB: number;
        };
        samples[mode]?.push({ ...sample, gbps: size / sample.seconds / 1e9 });
        await rm(target, { recursive: true, force: true });
      }
    }
    const label = `pull ${size / 1024 / 1024} MiB from Distribution into an OCI layout (Node)`;
    const gbps = (mode: string) => median((samples[mode] ?? []).map((s) => s.gbps));
    const rss = (mode: string) => median((samples[mode] ?? []).map((s) => s.rssMiB));
    add(`${label}: throughput (baseline: skopeo copy)`, "GB/s", gbps("ours"), gbps("skopeo"));
    add(`${label}: throughput (baseline: curl | sha256sum, no storage)`, "GB/s", gbps("ours"), gbps("curl"));
    add(
      `${label}: throughput (baseline: curl | openssl sha256, no storage)`,
      "GB/s",
      gbps("ours"),
      gbps("curl-openssl"),
    );
    add(
      `${label}: throughput (baseline: curl | tee FILE | openssl sha256, the same job by C tools)`,
      "GB/s",
      gbps("ours"),
      gbps("curl-tee-openssl"),
    );
    add(
      `${label}: throughput (baseline: Node fetch + node:crypto, no storage)`,
      "GB/s",
      gbps("ours"),
      gbps("node-fetch"),
    );
    add(`${label}: peak RSS (baseline: skopeo copy)`, "MiB", rss("ours"), rss("skopeo"));
    add(
      `${label}: peak RSS (baseline: Node fetch + node:crypto, no storage)`,
      "MiB",
      rss("ours"),
      rss("node-fetch"),
    );
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// Resume: a pull cut at 50% of its large blob (connection reset), then resumed into the same store.
if (want("resume")) {
  const size = quick ? 256 * 1024 * 1024 : GiB;
  const registry = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-resume-"));
  const cut = await startFaultProxy({ upstream: registry.host, seed: 1, rate: 0, cutAt: 0.5 });
  const clean = await startFaultProxy({ upstream: registry.host, seed: 1, rate: 0 });
  try {
    await modelInRegistry(join(dir, "source"), size, `${registry.host}/bench/resume:v1`);
    const store = createFsStore(join(dir, "store"));
    const client = createRegistryClient({ retries: 0, createHasher: createNodeHasher });
    const first = await pullModel(`${cut.host}/bench/resume:v1`, { store, client }).then(
      () => "complete",
      (error: unknown) => (error as { code?: string }).code ?? "error",
    );
    await pullModel(`${clean.host}/bench/resume:v1`, { store, client });
    const transferred = cut.blobBytes() + clean.blobBytes();
    const needed = (await store.list()).reduce((n, b) => n + b.size, 0);
    add(
      `resume: pull of ${size / 1024 / 1024} MiB cut at 50% (${first}), then resumed: bytes transferred (baseline: bytes needed)`,
      "MiB",
      transferred / 1024 / 1024,
      needed / 1024 / 1024,
    );
  } finally {
    await cut.close();
    await clean.close();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// Push of a model from an OCI layout to a real registry: ours against skopeo, alternating.
if (want("push")) {
  const size = quick ? 256 * 1024 * 1024 : GiB;
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-push-"));
  try {
    await makeLayout(dir, size);
    const ours: Sample[] = [];
    const theirs: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, into] of [
        ["ours", ours],
        ["skopeo", theirs],
      ] as const) {
        // An empty registry for every push: no client may find the blobs already there.
        const fresh = await startRegistry();
        await run("sync");
        const target = `${fresh.host}/bench/${mode}-${round}:v1`;
        const { stdout } = await run(process.execPath, [
          join(import.meta.dirname, "push-model.mjs"),
          mode,
          dir,
          "v1",
          target,
        ]).finally(() => fresh.stop());
        const sample = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as {
          seconds: number;
          rssMiB: number;
        };
        into.push({ ...sample, gbps: size / sample.seconds / 1e9 });
      }
    }
    const label = `push ${size / 1024 / 1024} MiB from an OCI layout to Distribution`;
    add(
      `${label}: throughput (baseline: skopeo copy)`,
      "GB/s",
      median(ours.map((s) => s.gbps)),
      median(theirs.map((s) => s.gbps)),
    );
    add(
      `${label}: peak RSS (baseline: skopeo copy)`,
      "MiB",
      median(ours.map((s) => s.rssMiB)),
      median(theirs.map((s) => s.rssMiB)),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Issue 19: a ModelPack model whose weights are tar layers (bench/tar-layers.ts).
if (want("tar-layers")) {
  await runTarLayerRows(
    {
      size: quick ? 256 * 1024 * 1024 : GiB,
      gzipSize: quick ? 64 * 1024 * 1024 : 256 * 1024 * 1024,
      browserSize: quick ? 64 * 1024 * 1024 : 256 * 1024 * 1024,
      rounds: 3,
      browserRounds: 3,
    },
    add,
  );
}

// Issue 21: "wan" runs all three; "wan-node", "wan-push", "wan-browser" one each.
const wan = (part: string) => want("wan") || want(`wan-${part}`);
if (wan("node") || wan("push") || wan("browser")) {
  const node = wan("node")
    ? await runWanNodeRows(ROUNDS, quick ? 256 * 1024 * 1024 : GiB, makeLayout, add)
    : {};
  const push = wan("push") ? await runWanPushRows(ROUNDS, 256 * 1024 * 1024, makeLayout, add) : {};
  const browser = wan("browser") ? await runWanBrowserRows(ROUNDS, quick ? 64 : 256, add) : {};
  await mkdir(join(import.meta.dirname, "results"), { recursive: true });
  const all = { link: WAN, node, push, browser };
  await writeFile(join(import.meta.dirname, "results", "wan.json"), `${JSON.stringify(all, null, 2)}\n`);
}

if (want("browser-pull")) {
  const pull = await runBrowserPullBench(ROUNDS, quick ? 64 : 256);
  const mbps = (mode: string) => median((pull.samples[mode] ?? []).map((s) => pull.size / s.seconds / 1e6));
  const heapMiB = (mode: string) => median((pull.samples[mode] ?? []).map((s) => s.peakHeap / 1024 / 1024));
  const cpu = (mode: string) => median((pull.samples[mode] ?? []).map((s) => s.cpuSeconds));
  const failed = Object.entries(pull.samples)
    .filter(([, list]) => list.some((x) => x.error))
    .map(([mode, list]) => `${mode} failed: ${list.find((x) => x.error)?.error}`);
  const label = `browser pull of ${pull.size / 1024 / 1024} MiB through the proxy (Chromium)${failed.length ? ` [${failed.join("; ")}]` : ""}`;
  for (const store of ["opfs", "opfs-worker", "idb"]) {
    add(
      `${label} into ${store}: throughput (baseline: fetch + hash-wasm, no storage)`,
      "MB/s",
      mbps(store),
      mbps("fetch-hash"),
    );
    add(
      `${label} into ${store}: throughput (baseline: fetch → arrayBuffer → cache.put, unverified)`,
      "MB/s",
      mbps(store),
      mbps("fetch-cache"),
    );
    add(
      `${label} into ${store}: peak JS heap growth (baseline: fetch → arrayBuffer → cache.put)`,
      "MiB",
      heapMiB(store),
      heapMiB("fetch-cache"),
    );
    add(
      `${label} into ${store}: CPU time of the whole machine, ${cores} cores (baseline: fetch + hash-wasm, no storage)`,
      "core-s",
      cpu(store),
      cpu("fetch-hash"),
    );
  }
}

if (want("upload")) {
  const upload = await runUploadBench(ROUNDS, quick ? 24 : 64);
  const uploadLabel = `WebGPU upload of ${(upload.size / 1024 / 1024).toFixed(0)} MiB in Chromium (chunk ${upload.chunk / 1024 / 1024} MiB)`;
  const streamed = upload.samples.streamed ?? [];
  const whole = upload.samples["whole-file"] ?? [];
  const mbps = (s: { seconds: number }) => upload.size / s.seconds / 1e6;
  add(
    `${uploadLabel}: throughput (baseline: read each file into one ArrayBuffer)`,
    "MB/s",
    median(streamed.map(mbps)),
    median(whole.map(mbps)),
  );
  add(
    `${uploadLabel}: time to the first tensor on the GPU (baseline: whole-file reads)`,
    "ms",
    median(streamed.map((s) => s.firstTensor * 1000)),
    median(whole.map((s) => s.firstTensor * 1000)),
  );
  add(
    `${uploadLabel}: peak JS heap growth (baseline: whole-file reads)`,
    "MiB",
    median(streamed.map((s) => s.peakHeap / 1024 / 1024)),
    median(whole.map((s) => s.peakHeap / 1024 / 1024)),
  );
}

// Last: its tens of GiB of writes leave the disk busy (writeback, discards) for a while after.
for (const size of want("fs-store") ? sizes : []) {
  const store: Sample[] = [];
  const plain: Sample[] = [];
  const durable: Sample[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // They alternate, so drift on the machine hits each.
    store.push(await measure("store", size));
    plain.push(await measure("plain", size));
    durable.push(await measure("plain-fsync", size));
  }
  const label = `${size / 1024 / 1024} MiB`;
  add(
    `fs store push ${label}: throughput (baseline: plain file write, no hashing)`,
    "GB/s",
    median(store.map((s) => s.gbps)),
    median(plain.map((s) => s.gbps)),
  );
  // The store flushes a blob to disk before it commits it, as skopeo's OCI layout writer does.
  add(
    `fs store push ${label}: throughput (baseline: plain file write + fsync, no hashing)`,
    "GB/s",
    median(store.map((s) => s.gbps)),
    median(durable.map((s) => s.gbps)),
  );
  add(
    `fs store push ${label}: peak RSS (baseline: plain file write)`,
    "MiB",
    median(store.map((s) => s.rssMiB)),
    median(plain.map((s) => s.rssMiB)),
  );
}

console.table(
  rows.map((r) => ({
    ...r,
    value: r.value.toFixed(3),
    baseline: r.baseline.toFixed(3),
    ratio: r.ratio.toFixed(2),
  })),
);
await mkdir(join(import.meta.dirname, "results"), { recursive: true });
await writeFile(join(import.meta.dirname, "results", "latest.json"), `${JSON.stringify(rows, null, 2)}\n`);

// Issue 19's rows: a ModelPack model whose weights are tar layers, against the same model as raw
// layers, pulled from Distribution in Node (fs store, one process per pull: bench/pull-tar.mjs) and in
// Chromium through the proxy (OPFS, IndexedDB: bench/browser-tar.ts), alternating in each round.
//   - store bytes ÷ the model's file bytes: uncompressed tar (goal 1.00), tar+gzip (goal ≤ 1.01);
//   - pull time of the tar model against the raw one (goal ≤ 1.05×);
//   - bytes read back from the store during the pull (goal 0 for raw and uncompressed tar layers; the
//     pull reads the model's config.json, 53 bytes here, to open the model, and its OCI config blob).
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startRegistry } from "../test/support/registry.js";
import { runBrowserTarBench, TAR_LAYOUTS, TAR_STORES } from "./browser-tar.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;

type Layout = (typeof TAR_LAYOUTS)[number];
interface NodeSample {
  seconds: number;
  /** CPU time of the pull's process (user + system): what load on the machine changes least. */
  cpuSeconds: number;
  rssMiB: number;
  storeBytes: number;
  diskBytes: number;
  fileBytes: number;
  readBack: number;
  readBackOther: number;
  inPlace: number;
}
type Add = (name: string, unit: string, value: number, baseline: number) => void;

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const range = (values: number[], digits: number) =>
  `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
const LABEL: Record<Layout, string> = {
  "modelpack-raw": "raw layers",
  "modelpack-tar": "uncompressed tar layers",
  "modelpack-tar-gzip": "tar+gzip layers",
};

/** Writes a SIZE-byte model as LAYOUT in an OCI layout in DIR and pushes it to TARGET with skopeo. */
async function modelInRegistry(dir: string, size: number, layout: Layout, target: string): Promise<void> {
  await run(process.execPath, [
    "--import",
    "tsx",
    join(import.meta.dirname, "make-layout.ts"),
    dir,
    String(size),
    layout,
  ]);
  await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${dir}:v1`, `docker://${target}`]);
}

/**
 * Node: raw and tar models of `size` bytes, the tar+gzip one of `gzipSize` (gzip costs its own time
 * to make and is measured for storage, not speed); Chromium: all three of `browserSize`.
 */
export async function runTarLayerRows(
  options: { size: number; gzipSize: number; browserSize: number; rounds: number; browserRounds: number },
  add: Add,
): Promise<void> {
  const { size, gzipSize, browserSize, rounds, browserRounds } = options;
  const registry = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-tar-"));
  const ranges: Record<string, string> = {};
  try {
    const nodeSize: Record<Layout, number> = {
      "modelpack-raw": size,
      "modelpack-tar": size,
      "modelpack-tar-gzip": gzipSize,
    };
    for (const layout of TAR_LAYOUTS) {
      await modelInRegistry(
        join(dir, `node-${layout}`),
        nodeSize[layout],
        layout,
        `${registry.host}/bench/node-${layout}:v1`,
      );
      await rm(join(dir, `node-${layout}`), { recursive: true, force: true });
      await modelInRegistry(
        join(dir, `browser-${layout}`),
        browserSize,
        layout,
        `${registry.host}/bench/browser-${layout}:v1`,
      );
      await rm(join(dir, `browser-${layout}`), { recursive: true, force: true });
    }

    const samples: Record<string, NodeSample[]> = {};
    for (let round = 0; round < rounds; round++) {
      for (const layout of TAR_LAYOUTS) {
        const target = join(dir, `pull-${layout}-${round}`);
        await run("sync"); // the previous run's writeback must not land on this one
        const { stdout } = await run(process.execPath, [
          join(import.meta.dirname, "pull-tar.mjs"),
          `${registry.host}/bench/node-${layout}:v1`,
          target,
        ]);
        samples[layout] = [...(samples[layout] ?? []), JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}")];
        await rm(target, { recursive: true, force: true });
      }
    }
    const of = (layout: Layout, key: keyof NodeSample) => (samples[layout] ?? []).map((s) => s[key]);
    const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
    const nodeLabel = (layout: Layout) =>
      `Node pull of a ${mib(nodeSize[layout])} ModelPack model as ${LABEL[layout]} into the fs store`;
    for (const layout of TAR_LAYOUTS) {
      add(
        `${nodeLabel(layout)}: store bytes (baseline: the model's file bytes; goal ratio ${layout === "modelpack-tar-gzip" ? "≤ 1.01" : "1.00"})`,
        "MiB",
        median(of(layout, "storeBytes")) / MiB,
        median(of(layout, "fileBytes")) / MiB,
      );
      add(
        `${nodeLabel(layout)}: bytes of every file under the store's directory (baseline: the model's file bytes)`,
        "MiB",
        median(of(layout, "diskBytes")) / MiB,
        median(of(layout, "fileBytes")) / MiB,
      );
      add(
        `${nodeLabel(layout)}: bytes of layers read back from the store during the pull (baseline: the model's file bytes; goal ${layout === "modelpack-tar-gzip" ? "—" : "0 beyond config.json"})`,
        "B",
        median(of(layout, "readBack")),
        median(of(layout, "fileBytes")),
      );
      ranges[`node ${layout} seconds`] = range(of(layout, "seconds"), 2);
      ranges[`node ${layout} CPU seconds`] = range(of(layout, "cpuSeconds"), 2);
      ranges[`node ${layout} layer bytes read back`] = range(of(layout, "readBack"), 0);
      ranges[`node ${layout} other bytes read back`] = range(of(layout, "readBackOther"), 0);
      ranges[`node ${layout} store/file`] = range(
        (samples[layout] ?? []).map((s) => s.storeBytes / s.fileBytes),
        5,
      );
    }
    add(
      `${nodeLabel("modelpack-tar")}: time (baseline: the same model as raw layers; goal ≤ 1.05×)`,
      "s",
      median(of("modelpack-tar", "seconds")),
      median(of("modelpack-raw", "seconds")),
    );
    add(
      `${nodeLabel("modelpack-tar")}: CPU time of the pull's process (baseline: the same model as raw layers)`,
      "s",
      median(of("modelpack-tar", "cpuSeconds")),
      median(of("modelpack-raw", "cpuSeconds")),
    );
    add(
      `${nodeLabel("modelpack-tar")}: peak RSS (baseline: the same model as raw layers)`,
      "MiB",
      median(of("modelpack-tar", "rssMiB")),
      median(of("modelpack-raw", "rssMiB")),
    );

    const browser = await runBrowserTarBench(
      registry.host,
      (layout) => `bench/browser-${layout}`,
      browserRounds,
    );
    const failed = Object.entries(browser)
      .filter(([, list]) => list.some((s) => s.error))
      .map(([key, list]) => `${key} failed: ${list.find((s) => s.error)?.error}`);
    const pick = (store: string, layout: Layout, key: "seconds" | "storeBytes" | "fileBytes" | "readBack") =>
      median((browser[`${store} ${layout}`] ?? []).map((s) => s[key]));
    for (const store of TAR_STORES) {
      const label = (layout: Layout) =>
        `Chromium pull of a ${mib(browserSize)} ModelPack model as ${LABEL[layout]} through the proxy into ${store}${failed.length ? ` [${failed.join("; ")}]` : ""}`;
      for (const layout of TAR_LAYOUTS) {
        add(
          `${label(layout)}: store bytes (baseline: the model's file bytes; goal ratio ${layout === "modelpack-tar-gzip" ? "≤ 1.01" : "1.00"})`,
          "MiB",
          pick(store, layout, "storeBytes") / MiB,
          pick(store, layout, "fileBytes") / MiB,
        );
        add(
          `${label(layout)}: bytes of layers read back from the store during the pull (baseline: the model's file bytes; goal ${layout === "modelpack-tar-gzip" ? "—" : "0 beyond config.json"})`,
          "B",
          pick(store, layout, "readBack"),
          pick(store, layout, "fileBytes"),
        );
        const list = browser[`${store} ${layout}`] ?? [];
        ranges[`${store} ${layout} seconds`] = range(
          list.map((s) => s.seconds),
          2,
        );
        ranges[`${store} ${layout} store/file`] = range(
          list.map((s) => s.storeBytes / s.fileBytes),
          5,
        );
        ranges[`${store} ${layout} layer bytes read back`] = range(
          list.map((s) => s.readBack),
          0,
        );
        ranges[`${store} ${layout} other bytes read back`] = range(
          list.map((s) => s.readBackOther),
          0,
        );
      }
      add(
        `${label("modelpack-tar")}: time (baseline: the same model as raw layers; goal ≤ 1.05×)`,
        "s",
        pick(store, "modelpack-tar", "seconds"),
        pick(store, "modelpack-raw", "seconds"),
      );
    }
    console.log("issue 19 rows, ranges over rounds:", ranges);
    await mkdir(join(import.meta.dirname, "results"), { recursive: true });
    await writeFile(
      join(import.meta.dirname, "results", "tar-layers.json"),
      `${JSON.stringify({ size, gzipSize, browserSize, node: samples, browser, ranges }, null, 2)}\n`,
    );
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// Issue 21's rows: pulls across a WAN-shaped link (test/support/shaping-proxy.ts in front of
// Distribution on loopback: 40 ms round trip, 25 MB/s per connection, as one TCP connection to a CDN
// runs), side by side in each round, and the same pulls on loopback, which must not get slower.
//   - Node (bench/pull-model.mjs, one process per pull): ours (large blobs in 4 ranges of 16 MiB)
//     against ours in one stream and `skopeo copy` (goals: ≥ 3× one stream, ≥ 2× skopeo);
//   - on loopback also `oci-model pull` (dist/node/cli.js) against `--connections 1`, and each against
//     itself with V8's incremental marking on (what the CLI ran with before it turned it off);
//   - Node push of 256 MiB from an OCI layout (bench/push-model.mjs): ours against skopeo, time and RSS;
//   - Chromium through the registry proxy into OPFS (bench/pages/pull-page.ts): ours against one
//     stream and fetch → arrayBuffer → cache.put (goal ≥ 2× that).
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { serveRegistryProxy } from "../src/node/index.js";
import { pushWithSkopeo } from "../test/support/layout.js";
import { dockerV01 } from "../test/support/models.js";
import { startRegistry } from "../test/support/registry.js";
import { type ShapingOptions, startShapingProxy } from "../test/support/shaping-proxy.js";
import { openBenchTab } from "./browser-tab.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** The link: what one connection to a CDN gets across the internet (issue 21's example). */
export const WAN: Omit<ShapingOptions, "upstream"> = { rttMs: 40, connectionRate: 25e6 };

type Add = (name: string, unit: string, value: number, baseline: number) => void;
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const spread = (values: number[]) => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)} s`;

/**
 * Rows of pulls with ranges handed to the store in order (`RangeOptions.atOffsets` false, mode
 * `${ours}-in-order`), against the same baselines as the default's (ranges at their offsets).
 */
function inOrderRows(
  label: string,
  link: string,
  s: (key: string) => number[],
  ours: string,
  single: string,
  add: Add,
  other = "skopeo",
) {
  const mode = `${ours}-in-order`;
  for (const baseline of [single, other]) {
    add(
      `${label} over ${link}, ranges in order: speed-up (baseline: ${baseline}, ${spread(s(`wan ${baseline}`))}; ours ${spread(s(`wan ${mode}`))})`,
      "×",
      median(s(`wan ${baseline}`)) / median(s(`wan ${mode}`)),
      1,
    );
  }
  add(
    `${label} on loopback, ranges in order: time (baseline: one stream)`,
    "s",
    median(s(`loopback ${mode}`)),
    median(s(`loopback ${single}`)),
  );
}

/** One pull in its own process (bench/pull-model.mjs): seconds and peak RSS. */
async function pullOnce(mode: string, ref: string): Promise<{ seconds: number; rssMiB: number }> {
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-wan-"));
  try {
    await run("sync");
    const script = join(import.meta.dirname, "pull-model.mjs");
    const { stdout } = await run(process.execPath, [script, mode, ref, join(dir, "out")], {
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * CLI modes on loopback: `oci-model pull` as a user runs it ("cli"), with `--connections 1`
 * ("cli-single"), and each with V8's incremental marking back on ("…-marking", what the CLI ran
 * with before it turned it off). Timed from the process's start, each the same way.
 */
const CLI_MODES: Record<string, { node: string[]; cli: string[] }> = {
  cli: { node: [], cli: [] },
  "cli-single": { node: [], cli: ["--connections", "1"] },
  "cli-marking": { node: ["--incremental-marking"], cli: [] },
  "cli-single-marking": { node: ["--incremental-marking"], cli: ["--connections", "1"] },
};

async function cliPullOnce(mode: string, ref: string): Promise<{ seconds: number }> {
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-wan-cli-"));
  const { node, cli } = CLI_MODES[mode] as { node: string[]; cli: string[] };
  try {
    await run("sync");
    const script = join(import.meta.dirname, "..", "dist", "node", "cli.js");
    const started = performance.now();
    await run(
      process.execPath,
      [...node, script, "pull", ref, "--plain-http", "--store", dir, "--json", ...cli],
      {
        maxBuffer: 1 << 26,
      },
    );
    return { seconds: (performance.now() - started) / 1000 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Node rows: a `size`-byte model (the layout `makeLayout` writes, pushed with skopeo) pulled over the
 * shaped link and on loopback. Returns every sample, for bench/README.md.
 */
export async function runWanNodeRows(
  rounds: number,
  size: number,
  makeLayout: (dir: string, size: number) => Promise<void>,
  add: Add,
): Promise<Record<string, number[]>> {
  const registry = await startRegistry();
  const shaped = await startShapingProxy({ upstream: registry.host, ...WAN });
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-wan-src-"));
  const samples: Record<string, number[]> = {};
  try {
    await makeLayout(dir, size);
    await run("skopeo", [
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `oci:${dir}:v1`,
      `docker://${registry.host}/bench/wan:v1`,
    ]);
    const links = { wan: `${shaped.host}/bench/wan:v1`, loopback: `${registry.host}/bench/wan:v1` };
    for (let round = 0; round < rounds; round++) {
      for (const [link, ref] of Object.entries(links)) {
        const cliModes = link === "loopback" ? Object.keys(CLI_MODES) : [];
        for (const mode of ["ours", "ours-in-order", "ours-single", "skopeo", ...cliModes]) {
          if (link === "loopback" && mode === "skopeo") continue; // the node-pull section's row
          const key = `${link} ${mode}`;
          const { seconds } = await (mode in CLI_MODES ? cliPullOnce : pullOnce)(mode, ref);
          samples[key] = [...(samples[key] ?? []), seconds];
          console.log(`wan: ${key} ${size / MiB} MiB ${seconds.toFixed(2)} s`);
        }
      }
    }
  } finally {
    await shaped.close();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const s = (key: string) => samples[key] ?? [];
  const label = `Node pull ${size / MiB} MiB`;
  const link = `${WAN.rttMs} ms RTT, ${(WAN.connectionRate as number) / 1e6} MB/s per connection`;
  add(
    `${label} over ${link}: speed-up (baseline: one stream, ${spread(s("wan ours-single"))})`,
    "×",
    median(s("wan ours-single")) / median(s("wan ours")),
    1,
  );
  add(
    `${label} over ${link}: speed-up (baseline: skopeo copy, ${spread(s("wan skopeo"))})`,
    "×",
    median(s("wan skopeo")) / median(s("wan ours")),
    1,
  );
  add(
    `${label} over ${link}: time, ours (${spread(s("wan ours"))})`,
    "s",
    median(s("wan ours")),
    median(s("wan ours-single")),
  );
  add(
    `${label} on loopback: time, ours in ranges (baseline: one stream)`,
    "s",
    median(s("loopback ours")),
    median(s("loopback ours-single")),
  );
  inOrderRows(label, link, s, "ours", "ours-single", add);
  const cli = `oci-model pull of ${size / MiB} MiB on loopback`;
  add(
    `${cli}: time, in ranges (baseline: --connections 1, ${spread(s("loopback cli-single"))})`,
    "s",
    median(s("loopback cli")),
    median(s("loopback cli-single")),
  );
  for (const [mode, what] of [
    ["cli", "in ranges"],
    ["cli-single", "--connections 1"],
  ] as const) {
    add(
      `${cli}: time, ${what} (baseline: the same with V8's incremental marking, ${spread(s(`loopback ${mode}-marking`))})`,
      "s",
      median(s(`loopback ${mode}`)),
      median(s(`loopback ${mode}-marking`)),
    );
  }
  return samples;
}

/**
 * Push rows: a `size`-byte model pushed from an OCI layout (the one `makeLayout` writes) over the
 * shaped link, ours against skopeo, each into an empty registry. Peak RSS as well.
 */
export async function runWanPushRows(
  rounds: number,
  size: number,
  makeLayout: (dir: string, size: number) => Promise<void>,
  add: Add,
): Promise<Record<string, { seconds: number; rssMiB: number }[]>> {
  const dir = await mkdtemp(join(tmpdir(), "oml-bench-wan-push-"));
  const samples: Record<string, { seconds: number; rssMiB: number }[]> = {};
  try {
    await makeLayout(dir, size);
    for (let round = 0; round < rounds; round++) {
      for (const mode of ["ours", "skopeo"]) {
        const registry = await startRegistry();
        const shaped = await startShapingProxy({ upstream: registry.host, ...WAN });
        try {
          await run("sync");
          const script = join(import.meta.dirname, "push-model.mjs");
          const { stdout } = await run(process.execPath, [
            script,
            mode,
            dir,
            "v1",
            `${shaped.host}/bench/push:v1`,
          ]);
          const sample = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
          samples[mode] = [...(samples[mode] ?? []), sample];
          console.log(
            `wan: push ${mode} ${size / MiB} MiB ${sample.seconds.toFixed(2)} s ${sample.rssMiB.toFixed(0)} MiB`,
          );
        } finally {
          await shaped.close();
          await registry.stop();
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const of = (mode: string, key: "seconds" | "rssMiB") => (samples[mode] ?? []).map((s) => s[key]);
  const label = `Node push ${size / MiB} MiB from an OCI layout`;
  const link = `${WAN.rttMs} ms RTT, ${(WAN.connectionRate as number) / 1e6} MB/s per connection`;
  add(
    `${label} over ${link}: time (baseline: skopeo copy, ${spread(of("skopeo", "seconds"))})`,
    "s",
    median(of("ours", "seconds")),
    median(of("skopeo", "seconds")),
  );
  add(
    `${label} over ${link}: peak RSS (baseline: skopeo copy)`,
    "MiB",
    median(of("ours", "rssMiB")),
    median(of("skopeo", "rssMiB")),
  );
  return samples;
}

/** Chromium rows: a `mib`-MiB model pulled through the registry proxy over the shaped link and on loopback. */
export async function runWanBrowserRows(
  rounds: number,
  mib: number,
  add: Add,
): Promise<Record<string, number[]>> {
  const registry = await startRegistry();
  const shaped = await startShapingProxy({ upstream: registry.host, ...WAN });
  const proxy = await serveRegistryProxy({ allow: [registry.host, shaped.host], port: 0 });
  const shard = new Uint8Array(mib * MiB);
  for (let i = 0; i < shard.length; i += 4096) shard[i] = (i / 4096) & 0xff;
  await pushWithSkopeo(registry, (await dockerV01([shard])).artifact, "bench/wan-browser", "v1");
  const { tab, close } = await openBenchTab("pull-page", "runPull");
  const samples: Record<string, number[]> = {};
  try {
    const links = { wan: shaped.host, loopback: registry.host };
    for (let round = 0; round < rounds; round++) {
      for (const [link, host] of Object.entries(links)) {
        for (const mode of ["opfs", "opfs-in-order", "opfs-single", "fetch-cache"]) {
          if (link === "loopback" && mode === "fetch-cache") continue; // the browser-pull section's row
          const sample = await tab.evaluate(([m, r, p, n]) => window.runPull(m, r, p, n), [
            mode,
            `${host}/bench/wan-browser:v1`,
            proxy.url,
            round,
          ] as const);
          if ("error" in sample) throw new Error(`${mode}: ${String(sample.error)}`);
          const key = `${link} ${mode}`;
          samples[key] = [...(samples[key] ?? []), sample.seconds];
          console.log(`wan: Chromium ${key} ${mib} MiB ${sample.seconds.toFixed(2)} s`);
        }
      }
    }
  } finally {
    await close();
    await proxy.close();
    await shaped.close();
    await registry.stop();
  }
  const s = (key: string) => samples[key] ?? [];
  const label = `Chromium pull ${mib} MiB into OPFS through the proxy`;
  const link = `${WAN.rttMs} ms RTT, ${(WAN.connectionRate as number) / 1e6} MB/s per connection`;
  add(
    `${label} over ${link}: speed-up (baseline: fetch → cache.put, ${spread(s("wan fetch-cache"))})`,
    "×",
    median(s("wan fetch-cache")) / median(s("wan opfs")),
    1,
  );
  add(
    `${label} over ${link}: speed-up (baseline: one stream, ${spread(s("wan opfs-single"))})`,
    "×",
    median(s("wan opfs-single")) / median(s("wan opfs")),
    1,
  );
  add(
    `${label} on loopback: time, ours in ranges (baseline: one stream)`,
    "s",
    median(s("loopback opfs")),
    median(s("loopback opfs-single")),
  );
  inOrderRows(label, link, s, "opfs", "opfs-single", add, "fetch-cache");
  return samples;
}

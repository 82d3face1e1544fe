// Issue 21's rows: pulls across a WAN-shaped link (test/support/shaping-proxy.ts in front of
// Distribution on loopback: 40 ms round trip, 25 MB/s per connection, as one TCP connection to a CDN
// runs), side by side in each round, and the same pulls on loopback, which must not get slower.
// The shaping proxy listens on loopback, where a pull's default is one request per blob
// (`rangesFor`): over the link, ours is asked for 8 connections, the default from a registry elsewhere.
//   - Node (bench/pull-model.mjs, one process per pull): ours (large blobs in ranges of 16 MiB)
//     against ours in one stream and `skopeo copy` (goals: ≥ 3× one stream, ≥ 2× skopeo);
//   - on loopback ours with the defaults, and in ranges, against one stream; `oci-model pull`
//     (dist/node/cli.js) with the defaults against `--connections 8`, and against itself with V8's
//     incremental marking on (what the CLI ran with before it turned it off);
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
 * `${ours}-in-order`), against the same baselines as ranges at their offsets.
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
}

/** Loopback rows: ours with the defaults (one request per blob there) and in ranges, against one stream. */
function loopbackRows(label: string, s: (key: string) => number[], ours: string, single: string, add: Add) {
  for (const [mode, what] of [
    [ours, "ours with the defaults (one request per blob)"],
    [`${ours}-ranged`, "ours in ranges (8 connections asked for)"],
  ] as const) {
    add(
      `${label} on loopback: time, ${what} (baseline: one stream, ${spread(s(`loopback ${single}`))})`,
      "s",
      median(s(`loopback ${mode}`)),
      median(s(`loopback ${single}`)),
    );
  }
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
 * CLI modes on loopback: `oci-model pull` as a user runs it ("cli": one request per blob from
 * loopback), with `--connections 8` ("cli-ranged"), and as a user runs it with V8's incremental
 * marking back on ("cli-marking", what the CLI ran with before it turned it off). Timed from the
 * process's start, each the same way.
 */
const CLI_MODES: Record<string, { node: string[]; cli: string[] }> = {
  cli: { node: [], cli: [] },
  "cli-ranged": { node: [], cli: ["--connections", "8"] },
  "cli-marking": { node: ["--incremental-marking"], cli: [] },
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
        const modes =
          link === "loopback"
            ? ["ours", "ours-ranged", "ours-single", ...Object.keys(CLI_MODES)] // skopeo: the node-pull section's
            : ["ours-ranged", "ours-in-order", "ours-single", "skopeo"];
        for (const mode of modes) {
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
    median(s("wan ours-single")) / median(s("wan ours-ranged")),
    1,
  );
  add(
    `${label} over ${link}: speed-up (baseline: skopeo copy, ${spread(s("wan skopeo"))})`,
    "×",
    median(s("wan skopeo")) / median(s("wan ours-ranged")),
    1,
  );
  add(
    `${label} over ${link}: time, ours (${spread(s("wan ours-ranged"))})`,
    "s",
    median(s("wan ours-ranged")),
    median(s("wan ours-single")),
  );
  inOrderRows(label, link, s, "ours", "ours-single", add);
  loopbackRows(label, s, "ours", "ours-single", add);
  const cli = `oci-model pull of ${size / MiB} MiB on loopback`;
  add(
    `${cli}: time, as a user runs it (baseline: --connections 8, ${spread(s("loopback cli-ranged"))})`,
    "s",
    median(s("loopback cli")),
    median(s("loopback cli-ranged")),
  );
  add(
    `${cli}: time, as a user runs it (baseline: with V8's incremental marking, ${spread(s("loopback cli-marking"))})`,
    "s",
    median(s("loopback cli")),
    median(s("loopback cli-marking")),
  );
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
        const modes =
          link === "loopback"
            ? ["opfs", "opfs-ranged", "opfs-single"] // fetch-cache: the browser-pull section's
            : ["opfs-ranged", "opfs-in-order", "opfs-single", "fetch-cache"];
        for (const mode of modes) {
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
    median(s("wan fetch-cache")) / median(s("wan opfs-ranged")),
    1,
  );
  add(
    `${label} over ${link}: speed-up (baseline: one stream, ${spread(s("wan opfs-single"))})`,
    "×",
    median(s("wan opfs-single")) / median(s("wan opfs-ranged")),
    1,
  );
  inOrderRows(label, link, s, "opfs", "opfs-single", add, "fetch-cache");
  loopbackRows(label, s, "opfs", "opfs-single", add);
  return samples;
}

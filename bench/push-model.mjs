// Plain JavaScript over dist/, so the process holds nothing but the work (no TypeScript loader).
// One measurement in its own process: push a SIZE-byte model from an OCI layout to a registry,
// with pushModel ("ours") or skopeo ("skopeo", the baseline). Prints one JSON line with seconds
// and peak RSS (ours: this process; skopeo: its VmHWM, sampled).
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { pushModel } from "../dist/index.js";
import { createFsStore } from "../dist/node/index.js";

const [mode = "ours", layout = "", tag = "", target = ""] = process.argv.slice(2);

async function skopeo() {
  const child = spawn("skopeo", [
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    `oci:${layout}:${tag}`,
    `docker://${target}`,
  ]);
  let peak = 0;
  const sample = async () => {
    const status = await readFile(`/proc/${child.pid}/status`, "utf8").catch(() => "");
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb / 1024);
  };
  const timer = setInterval(() => void sample(), 20);
  await new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`skopeo exited ${code}`)))),
  );
  clearInterval(timer);
  return peak;
}

const started = performance.now();
let rssMiB;
if (mode === "skopeo") {
  rssMiB = await skopeo();
} else {
  await pushModel(createFsStore(layout), tag, target);
  rssMiB = process.resourceUsage().maxRSS / 1024;
}
process.stdout.write(`${JSON.stringify({ mode, seconds: (performance.now() - started) / 1000, rssMiB })}\n`);

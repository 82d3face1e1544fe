// Plain JavaScript over dist/, so the process holds nothing but the work (no TypeScript loader).
// One measurement in its own process: pull REF into a fresh OCI layout DIR with pullModel ("ours",
// the defaults; "ours-single" with every blob in one stream; "ours-ranged" in ranges as from a
// registry elsewhere; "ours-in-order" those handed to the store in order),
// skopeo ("skopeo"), or fetch one blob URL through curl | sha256sum ("curl", what the issue named as the
// limit; coreutils hashes at ~0.5 GB/s here), curl | openssl sha256 ("curl-openssl", SHA-NI: the real
// download + hash limit, no storage) or curl | tee FILE | openssl sha256 ("curl-tee-openssl": download,
// store and hash), or fetch the blob in Node and hash it with node:crypto ("node-fetch": what any
// fetch-based pull in this Node costs in time and memory before it stores a byte).
// Prints one JSON line: seconds and peak RSS (ours: this process; others: VmHWM, sampled).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { pullModel } from "../dist/index.js";
import { createFsStore, createNodeHasher } from "../dist/node/index.js";

const [mode = "ours", ref = "", dir = "", blobUrl = ""] = process.argv.slice(2);

async function peakOf(child) {
  let peak = 0;
  const sample = async () => {
    for (const pid of [
      child.pid,
      ...(await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").catch(() => ""))
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    ]) {
      const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    }
  };
  const timer = setInterval(() => void sample(), 20);
  await new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`)))),
  );
  clearInterval(timer);
  return peak;
}

const started = performance.now();
let rssMiB;
if (mode === "skopeo") {
  rssMiB = await peakOf(
    spawn("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${dir}:v1`]),
  );
} else if (mode.startsWith("curl")) {
  const hash = mode === "curl" ? "sha256sum" : "openssl dgst -sha256";
  // curl-tee-openssl: the whole job (download, store, hash) done by C tools, its own limit here.
  const store = mode === "curl-tee-openssl" ? `| tee '${dir}.blob' ` : "";
  rssMiB = await peakOf(spawn("bash", ["-c", `curl -sf '${blobUrl}' ${store}| ${hash} > /dev/null`]));
  if (store) await rm(`${dir}.blob`);
} else if (mode === "node-fetch") {
  const hash = createHash("sha256");
  for await (const chunk of (await fetch(blobUrl)).body) hash.update(chunk);
  hash.digest("hex");
  rssMiB = process.resourceUsage().maxRSS / 1024;
} else {
  // ours-single: every blob in one stream (no parallel ranges), the baseline of issue 21's rows;
  // ours-ranged: ranges as from a registry elsewhere (8 connections, the default there; a registry
  // on loopback, the shaping proxy included, gets one request per blob unless connections is set);
  // ours-in-order: the same, ranges handed to the store in order, not at their offsets.
  const ranges = {
    "ours-single": { connections: 1 },
    "ours-ranged": { connections: 8 },
    "ours-in-order": { connections: 8, atOffsets: false },
  }[mode];
  await pullModel(ref, {
    store: createFsStore(dir),
    createHasher: createNodeHasher,
    ...(ranges ? { ranges } : {}),
  });
  rssMiB = process.resourceUsage().maxRSS / 1024;
}
const { userCPUTime, systemCPUTime } = process.resourceUsage();
// cpuSeconds: this process's own (ours, node-fetch; for the others, only their parent's).
const cpuSeconds = (userCPUTime + systemCPUTime) / 1e6;
process.stdout.write(
  `${JSON.stringify({ mode, seconds: (performance.now() - started) / 1000, rssMiB, cpuSeconds })}\n`,
);

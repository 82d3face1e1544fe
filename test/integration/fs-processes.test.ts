// Two real processes on one fs store: exclusion must hold across processes, not only across calls.
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createFsStore } from "../../src/node/index.js";

const WRITER = join(import.meta.dirname, "../support/fs-writer.ts");

interface Writer {
  child: ChildProcess;
  events: Record<string, unknown>[];
  /** Resolves with the first event matching `test`. */
  until(test: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exit: Promise<number | null>;
}

function writer(args: string[]): Writer {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const events: Record<string, unknown>[] = [];
  const waiting: [(e: Record<string, unknown>) => boolean, (e: Record<string, unknown>) => void][] = [];
  let buffered = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const event = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      events.push(event);
      for (const [test, resolve] of waiting) if (test(event)) resolve(event);
    }
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    events,
    exit,
    until: (test) =>
      new Promise((resolve, reject) => {
        const seen = events.find(test);
        if (seen) return resolve(seen);
        waiting.push([test, resolve]);
        void exit.then((code) =>
          reject(new Error(`the writer exited (${code}) first: ${JSON.stringify(events)}`)),
        );
      }),
  };
}

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function storeDir() {
  const dir = await mkdtemp(join(tmpdir(), "oml-two-"));
  dirs.push(dir);
  return dir;
}

async function sha256Of(path: string) {
  return `sha256:${createHash("sha256")
    .update(await readFile(path))
    .digest("hex")}`;
}

describe("one fs store, two processes", () => {
  it("a second writer stalled mid-blob (through a symlink) never corrupts what the first commits", async () => {
    const dir = await storeDir();
    const alias = `${dir}-alias`;
    await symlink(dir, alias);
    dirs.push(alias);
    // A writes 8 MiB steadily; B arrives half-way, for the same blob, and stalls after 256 KiB.
    const a = writer([dir, "push", "--pace", "25"]);
    children.push(a.child);
    const { digest } = await a.until((e) => e.event === "pushing");
    await a.until((e) => e.event === "sent" && (e.sent as number) >= 3 * 1024 * 1024);
    const b = writer([alias, "push", "--stall-after", String(256 * 1024)]);
    children.push(b.child);
    expect(await a.exit).toBe(0);
    const hex = String(digest).slice("sha256:".length);
    expect(await sha256Of(join(dir, "blobs", "sha256", hex))).toBe(digest);
    // B waited for A's lock, then found the blob committed: it read nothing of its own source.
    const done = await b.until((e) => e.event === "done" || e.event === "error");
    expect(done).toMatchObject({ event: "done", existed: true, fetched: 0 });
    expect(await sha256Of(join(dir, "blobs", "sha256", hex))).toBe(digest);
    expect((await readdir(join(dir, "ingest"))).filter((n) => !n.startsWith("."))).toEqual([]);
  });

  it("a writer killed mid-blob leaves a lock the next one takes over, and the blob is right", async () => {
    const dir = await storeDir();
    const a = writer([dir, "push", "--stall-after", String(2 * 1024 * 1024)]);
    children.push(a.child);
    const { digest } = await a.until((e) => e.event === "pushing");
    await a.until((e) => e.event === "stalled");
    a.child.kill("SIGKILL");
    await a.exit;
    const b = writer([dir, "push"]);
    children.push(b.child);
    expect(await b.exit).toBe(0);
    expect(await b.until((e) => e.event === "done")).toMatchObject({ existed: false });
    expect(await sha256Of(join(dir, "blobs", "sha256", String(digest).slice(7)))).toBe(digest);
  });

  it("tags written by two processes at once are all kept", async () => {
    const dir = await storeDir();
    const tagging = [writer([dir, "tag", "a", "--count", "25"]), writer([dir, "tag", "b", "--count", "25"])];
    for (const w of tagging) children.push(w.child);
    expect(await Promise.all(tagging.map((w) => w.exit))).toEqual([0, 0]);
    const names = [...(await createFsStore(dir).tags()).keys()];
    expect(names).toHaveLength(50);
  });
});

/** Runs the writer under strace, returning the traced calls (paths shown for descriptors), one a line. */
async function traced(calls: string, args: string[]): Promise<string[]> {
  const child = spawn(
    "strace",
    ["-f", "-qq", "-y", "-e", `trace=${calls}`, process.execPath, "--import", "tsx", WRITER, ...args],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let trace = "";
  child.stderr.on("data", (chunk: Buffer) => {
    trace += chunk.toString();
  });
  expect(await new Promise((resolve) => child.once("exit", resolve)), trace).toBe(0);
  return trace.split("\n").map((line) => line.replace(/^\[pid +\d+\] /, ""));
}

/** The index of the first line matching each pattern, in order, or -1 where one is missing. */
function inOrder(lines: string[], patterns: RegExp[]): number[] {
  let from = 0;
  return patterns.map((pattern) => {
    const at = lines.findIndex((line, i) => i >= from && pattern.test(line));
    if (at >= 0) from = at + 1;
    return at;
  });
}

describe("what reaches the disk (strace)", () => {
  it("a blob is flushed before it is renamed into blobs/, and the folder after; index.json likewise", async () => {
    const dir = await storeDir();
    const push = await traced("fdatasync,fsync,rename", [dir, "push", "--size", String(1024 * 1024)]);
    const blob = inOrder(push, [
      /^fdatasync\(\d+<.*\/ingest\/sha256-[0-9a-f]+\.data>\) = 0/,
      /^rename\(".*\/ingest\/sha256-[0-9a-f]+\.data", ".*\/blobs\/sha256\/[0-9a-f]+"\) = 0/,
      /^fsync\(\d+<.*\/blobs\/sha256>\) = 0/,
    ]);
    expect(
      blob.every((at) => at >= 0),
      push.join("\n"),
    ).toBe(true);

    const tag = await traced("fsync,rename", [dir, "tag", "t", "--count", "1"]);
    const index = inOrder(tag, [
      /^fsync\(\d+<.*\/index\.json\.[^>]*\.tmp>\) = 0/,
      /^rename\(".*\/index\.json\.[^"]*\.tmp", ".*\/index\.json"\) = 0/,
      /^fsync\(\d+<.*\/oml-two-[^/>]*>\) = 0/,
    ]);
    expect(
      index.every((at) => at >= 0),
      tag.join("\n"),
    ).toBe(true);
  });
});

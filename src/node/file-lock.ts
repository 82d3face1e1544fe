import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { link, readFile, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { abortError } from "../errors.js";

/** Who holds a lock: enough to tell, on this host, whether that process still runs. */
interface Holder {
  pid: number;
  host: string;
  /** The process's start time as the kernel tells it (Linux), so a reused pid is not mistaken for it. */
  started?: number;
  token: string;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), where there is /proc. */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

const self = (): Holder => {
  const started = processStart(process.pid);
  return {
    pid: process.pid,
    host: hostname(),
    ...(started === undefined ? {} : { started }),
    token: randomUUID(),
  };
};

/** Whether the holder is certainly gone: a process of this host that no longer runs, or whose pid was reused. */
function isStale(holder: Holder): boolean {
  if (holder.host !== hostname()) return false; // cannot tell: wait for it
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    return (error as { code?: string }).code === "ESRCH";
  }
  const started = processStart(holder.pid);
  return holder.started !== undefined && started !== undefined && started !== holder.started;
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Holder;
  } catch {
    return undefined; // gone, or not ours to read
  }
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError("wait for the store's lock", signal?.reason));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Takes the lock file `path`, waiting while another process holds it, and returns its release.
 * The file appears whole (written aside, then hard-linked into place: `link` fails if it exists),
 * names its holder's pid, host and start time, and is taken over once that process is gone (killed,
 * crashed). A holder on another host is waited for, as nothing here can tell whether it runs.
 */
export async function lockFile(path: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  const me = self();
  const mine = `${path}.${me.token}`;
  await writeFile(mine, JSON.stringify(me));
  try {
    for (let wait = 10; ; wait = Math.min(wait * 2, 250)) {
      if (signal?.aborted) throw abortError("wait for the store's lock", signal.reason);
      try {
        await link(mine, path);
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== "EEXIST") throw error;
      }
      const holder = await readHolder(path);
      if (holder && isStale(holder)) await takeOver(path, holder);
      else await sleep(wait, signal);
    }
  } finally {
    await rm(mine, { force: true });
  }
  return async () => {
    if ((await readHolder(path))?.token === me.token) await rm(path, { force: true });
  };
}

/**
 * Removes the lock of a holder that is gone. Moving the file aside is atomic, so of several waiters
 * one moves it; if what it moved is not the stale lock (another waiter took over first and locked
 * anew), it is put back.
 */
async function takeOver(path: string, stale: Holder): Promise<void> {
  const aside = `${path}.stale-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else moved it
  }
  if ((await readHolder(aside))?.token !== stale.token) await link(aside, path).catch(() => {});
  await rm(aside, { force: true });
}

/** Whether a live process holds the lock file `path`. */
export async function isFileLocked(path: string): Promise<boolean> {
  const holder = await readHolder(path);
  return holder !== undefined && !isStale(holder);
}

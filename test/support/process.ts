import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createServer } from "node:net";
import type { Readable } from "node:stream";
import { promisify } from "node:util";

export const run = promisify(execFile);

/**
 * A free TCP port on 127.0.0.1 (asked of the kernel, then released). Only for a process that must
 * be told its port in advance (docker-registry's config): the port can be taken by someone else
 * before that process binds it, so its starter must retry. Node servers listen on port 0 instead.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** The process exited before it answered (see `log`). */
export class ProcessExitedError extends Error {
  constructor(
    readonly code: number | null,
    readonly log: string,
  ) {
    super(`process exited with ${code}:\n${log}`);
  }
}

/**
 * Polls `url` until an answer passes `isReady` (the one from the server we started, not from
 * whatever else holds the port), the process exits (`ProcessExitedError`), or `ms` pass.
 */
export async function waitForHttp(
  url: string,
  child: ChildProcess,
  log: () => string,
  isReady: (response: Response) => boolean,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let last = "no answer";
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new ProcessExitedError(child.exitCode, log());
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer().catch(() => undefined);
      if (isReady(response)) return;
      last = `an answer that is not the expected server's: ${response.status} ${JSON.stringify([...response.headers])}`;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${ms} ms (${last}):\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a long-running process, collecting its output for error messages. `closed` settles once
 * it has exited and its output is all read (`exit` can come before the last of stderr).
 */
export function startProcess(
  command: string,
  args: string[],
): { child: ChildProcess; log: () => string; closed: Promise<void> } {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const closed = new Promise<void>((resolve) => {
    child.once("close", () => resolve());
    child.once("error", () => resolve());
  });
  return { child, log: () => output, closed };
}

export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/**
 * The first complete line of `child`'s stdout that `test` accepts: lines are buffered across
 * chunks, so a line split over two reads (or two lines in one read) is seen whole. Rejects when
 * the process exits or `ms` pass first, with what it printed.
 */
export function readLine(child: ChildProcess, test: (line: string) => boolean, ms = 15_000): Promise<string> {
  const stdout = child.stdout as Readable | null;
  if (!stdout) return Promise.reject(new Error("the process has no stdout pipe"));
  return new Promise((resolve, reject) => {
    let buffered = "";
    let seen = "";
    const done = () => {
      clearTimeout(timer);
      stdout.off("data", onData);
      child.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl).replace(/\r$/, "");
        buffered = buffered.slice(nl + 1);
        seen += `${line}\n`;
        if (test(line)) {
          done();
          return resolve(line);
        }
      }
    };
    // `close`, not `exit`: it comes after the last of stdout was read.
    const onClose = (code: number | null) => {
      done();
      reject(new Error(`the process exited (${code}) before printing the line; stdout:\n${seen}${buffered}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no such line on stdout within ${ms} ms; stdout:\n${seen}${buffered}`));
    }, ms);
    stdout.on("data", onData);
    child.once("close", onClose);
  });
}

/** A whole stdout line that is an http URL (a CLI server's address). */
export const isHttpUrlLine = (line: string): boolean => /^http:\/\/\S+$/.test(line);

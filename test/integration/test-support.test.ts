// The test support that other files lean on (issue 24, item 5): the test registry's start-up must
// not take another server's answer for its own, and a port taken before the registry binds it must
// cost a retry, not a failed file; a CLI server's URL is read as a whole line.

import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, isHttpUrlLine, readLine } from "../support/process.js";
import { startRegistry } from "../support/registry.js";

describe("startRegistry", () => {
  let impostor: Server;
  let impostorPort = 0;
  let impostorRequests = 0;

  beforeAll(async () => {
    // Holds a port and answers everything the way a registry would, Distribution header included.
    impostor = createServer((_req, res) => {
      impostorRequests++;
      res.writeHead(200, { "docker-distribution-api-version": "registry/2.0" }).end("{}");
    });
    await new Promise<void>((resolve) => impostor.listen(0, "127.0.0.1", resolve));
    const address = impostor.address();
    impostorPort = typeof address === "object" && address ? address.port : 0;
  });
  afterAll(async () => {
    impostor.closeAllConnections();
    await new Promise<void>((resolve) => impostor.close(() => resolve()));
  });

  it("given a taken port, starts again on another, never taking the other server's answer for its own", async () => {
    const picked: number[] = [];
    const registry = await startRegistry({
      pickPort: async () => {
        const port = picked.length === 0 ? impostorPort : await freePort();
        picked.push(port);
        return port;
      },
    });
    try {
      expect(picked).toHaveLength(2);
      expect(picked[0]).toBe(impostorPort);
      expect(registry.host).toBe(`127.0.0.1:${picked[1]}`);
      // The wait did ask the impostor (it answered first) and refused what it said.
      expect(impostorRequests).toBeGreaterThan(0);
      const response = await fetch(`http://${registry.host}/v2/`);
      expect(response.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
      expect(response.headers.get("x-test-registry")).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await registry.stop();
    }
  });

  it("gives up after a few taken ports, with the registry's log", async () => {
    let picks = 0;
    const failure = await startRegistry({
      auth: "token",
      pickPort: async () => {
        picks++;
        return impostorPort;
      },
    }).then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/bind: address already in use/);
    expect(picks).toBe(5);
  });
});

describe("readLine", () => {
  it("waits for the whole line, however stdout splits it, and skips lines the test refuses", async () => {
    // The URL arrives in two writes, after a line that is not it, as a slow server's might.
    const script = `
      process.stdout.write("listening\\nhttp://127.0.");
      setTimeout(() => process.stdout.write("0.1:4321\\nmore\\n"), 100);
      setTimeout(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["-e", script]);
    try {
      expect(await readLine(child, isHttpUrlLine)).toBe("http://127.0.0.1:4321");
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("fails with what was printed when the process exits before the line", async () => {
    const child = spawn(process.execPath, ["-e", 'process.stdout.write("http://127.0.")']);
    await expect(readLine(child, isHttpUrlLine)).rejects.toThrow(/exited \(0\)[\s\S]*http:\/\/127\.0\./);
  });
});

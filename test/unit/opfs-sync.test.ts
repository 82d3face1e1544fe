// The OPFS writer's file work (src/store/opfs-sync.ts) over sync-access-handle doubles: what a
// checkpoint record of a download written to several pieces at once (ranges at their offsets) waits
// for, and when it is refused.
import { describe, expect, it } from "vitest";
import { syncFileServer } from "../../src/store/opfs-sync.js";

/** A file whose handle logs what is done to it; `full` makes its writes report no space (Chromium). */
function fakeFile(name: string, log: string[], options: { full?: boolean } = {}) {
  const handle = {
    write: (bytes: Uint8Array) => (options.full ? 2 ** 32 - 8 : bytes.byteLength),
    truncate: () => {},
    flush: () => void log.push(`flush ${name}`),
    close: () => void log.push(`close ${name}`),
  };
  return { createSyncAccessHandle: async () => handle } as unknown as FileSystemFileHandle;
}

describe("OPFS writer records", () => {
  it("flush every piece still open before the record is written", async () => {
    const log: string[] = [];
    const run = syncFileServer();
    await run({ kind: "open", key: "a#1", file: fakeFile("a", log), size: 0 });
    await run({ kind: "open", key: "b#2", file: fakeFile("b", log), size: 0 });
    await run({ kind: "write", key: "a#1", at: 0, bytes: new Uint8Array(10) });
    await run({ kind: "write", key: "b#2", at: 0, bytes: new Uint8Array(10) });
    await run({ kind: "close", key: "a#1" });
    log.length = 0;
    await run({ kind: "put", keys: ["a#1", "b#2"], file: fakeFile("record", log), bytes: new Uint8Array(3) });
    // The closed piece was flushed when it closed; the open one now; then the record is written.
    expect(log).toEqual(["flush b", "close record"]);
  });

  it("are refused after a write failed under any of the download's pieces, closed since or not", async () => {
    const log: string[] = [];
    const run = syncFileServer();
    await run({ kind: "open", key: "a#1", file: fakeFile("a", log, { full: true }), size: 0 });
    await run({ kind: "open", key: "b#2", file: fakeFile("b", log), size: 0 });
    const failed = await run({ kind: "write", key: "a#1", at: 0, bytes: new Uint8Array(10) }).catch((e) => e);
    expect((failed as DOMException).name).toBe("QuotaExceededError");
    await run({ kind: "close", key: "a#1" });
    const record = fakeFile("record", log);
    const refused = await run({
      kind: "put",
      keys: ["a#1", "b#2"],
      file: record,
      bytes: new Uint8Array(3),
    }).catch((e) => e);
    expect((refused as DOMException).name).toBe("QuotaExceededError");
    expect(log).not.toContain("close record");
    // A download that never wrote under the failed key records as before.
    await run({ kind: "put", keys: ["b#2"], file: record, bytes: new Uint8Array(3) });
    expect(log).toContain("close record");
  });
});

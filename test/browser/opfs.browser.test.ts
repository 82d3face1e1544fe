import { describe, expect, it } from "vitest";
import { type IngestReport, ingestAndReport } from "./opfs-ingest.js";

// 13 writes of 256 KiB, cut off once: written through createWritable they would be 13 piece files;
// appended through a sync access handle they are one, resumed in place.
const expectAppended = (report: IngestReport) => {
  expect(report).toEqual({
    pieces: 1,
    resumedFrom: expect.any(Number),
    equal: true,
    firstError: "NETWORK",
    givenBack: true,
  });
  expect(report.resumedFrom).toBeGreaterThan(0);
};

describe("OPFS ingest through sync access handles", () => {
  it("on a page: appends every chunk to one piece through the helper worker, and resumes into it", async () => {
    expectAppended(await ingestAndReport());
  });

  it("in a dedicated worker: uses the handles directly", async () => {
    const worker = new Worker(new URL("./workers/opfs-ingest.worker.ts", import.meta.url), {
      type: "module",
    });
    const report = await new Promise<IngestReport>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    });
    worker.terminate();
    expectAppended(report);
  });

  it("in a dedicated worker: a full disk part-way through ranges leaves no piece held open, and a second push completes", async () => {
    const worker = new Worker(new URL("./workers/opfs-quota.worker.ts", import.meta.url), {
      type: "module",
    });
    const report = await new Promise((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    });
    worker.terminate();
    expect(report).toEqual({ first: "QUOTA_EXCEEDED", again: "stored" });
  });
});

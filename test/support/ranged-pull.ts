// A pull in its own process (run with `node --import tsx`), to be killed in the middle: pulls
// REFERENCE into the fs store at DIR with the ranges given as JSON, and reports its progress on
// stdout as JSON lines ({ loaded, total }), then { done: digest } or { error: code }.
import { pullModel, type RangeOptions } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";

const [reference = "", dir = "", ranges = "{}", chunk = "1048576"] = process.argv.slice(2);
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

try {
  const model = await pullModel(reference, {
    store: createFsStore(dir, { chunkSize: Number(chunk), checkpointBytes: Number(chunk) }),
    ranges: JSON.parse(ranges) as RangeOptions,
    onProgress: (e) => {
      if (e.type === "progress") say({ loaded: e.overallLoaded, total: e.overallTotal });
    },
  });
  say({ done: model.digest });
} catch (error) {
  say({ error: (error as { code?: string }).code ?? String(error) });
}

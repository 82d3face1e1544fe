// A dedicated worker: the OPFS store uses sync access handles directly here.
import { ingestAndReport } from "../opfs-ingest.js";

ingestAndReport().then(
  (report) => postMessage(report),
  (error: unknown) => postMessage({ error: String(error) }),
);

import { OciError } from "../../index.js";
import { serveLayout } from "../serve.js";
import { defineCommand, UsageError } from "./command.js";

/** `oci-model serve`: an OCI layout, read-only, over the distribution API until SIGINT or SIGTERM. */
export const serveCommand = defineCommand({
  synopsis: "<layout-dir>",
  summary: "serve an OCI layout read-only over the distribution API (local use)",
  usage: `Usage: oci-model serve <layout-dir> [--port 5050] [--host 127.0.0.1]

Serves an OCI layout read-only over the distribution API (manifests by tag or digest, blobs with
Range, tags/list); every repository name maps onto the layout. For local use, not a registry.`,
  options: { port: { type: "string" }, host: { type: "string" } },
  allowPositionals: true,
  async run(values, positionals, io) {
    const [dir] = positionals;
    if (!dir || positionals.length !== 1) throw new UsageError("Cannot serve: give one layout folder");
    const port = Number(values.port ?? 5050);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new OciError("INVALID_ARGUMENT", `Cannot serve: --port ${values.port} is not a port`);
    const server = await serveLayout(dir, { port, host: values.host ?? "127.0.0.1" });
    io.stderr(`oci-model serve: ${dir} read-only on ${server.url} (local use only; not a registry)\n`);
    io.stdout(`${server.url}\n`);
    await new Promise<void>((resolve) => io.onSignal(["SIGINT", "SIGTERM"], resolve));
    await server.close();
    return 0;
  },
});

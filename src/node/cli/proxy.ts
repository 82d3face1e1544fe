import { OciError } from "../../index.js";
import { serveRegistryProxy } from "../proxy-server.js";
import { defineCommand, UsageError } from "./command.js";

const USAGE = `Usage: oci-model proxy --allow HOST[,HOST…] [--port 8787] [--host 127.0.0.1] [--origin ORIGIN[,…]] [--plain-http HOST[,…]]

Serves the registry proxy that lets browsers reach registries without CORS headers.
  --allow       upstream hosts or presets (dockerhub, ghcr, quay, gcr, mcr, nvcr, ecr-public, ollama, huggingface); nothing else is reached
  --origin      page origins allowed to use it (default: any)
  --plain-http  upstream hosts reached over http (loopback hosts always are)
  --port/--host where to listen (default 127.0.0.1:8787)`;

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** `oci-model proxy`: the registry proxy for browsers, until SIGINT or SIGTERM. */
export const proxyCommand = defineCommand({
  synopsis: "--allow HOSTS",
  summary: "serve the registry proxy for browsers",
  usage: USAGE,
  options: {
    allow: { type: "string", multiple: true },
    origin: { type: "string", multiple: true },
    "plain-http": { type: "string", multiple: true },
    port: { type: "string" },
    host: { type: "string" },
  },
  async run(values, _positionals, io) {
    const allow = (values.allow ?? []).flatMap(list);
    if (allow.length === 0) throw new UsageError("Cannot start the proxy: --allow is required");
    const port = Number(values.port ?? 8787);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new OciError("INVALID_ARGUMENT", `Cannot start the proxy: --port ${values.port} is not a port`);
    }
    const origins = (values.origin ?? []).flatMap(list);
    const server = await serveRegistryProxy({
      allow,
      port,
      host: values.host ?? "127.0.0.1",
      ...(origins.length ? { origins } : {}),
      plainHttp: (values["plain-http"] ?? []).flatMap(list),
    });
    io.stderr(`oci-model proxy: listening on ${server.url} for ${allow.join(", ")}\n`);
    io.stdout(`${server.url}\n`);
    await new Promise<void>((resolve) => io.onSignal(["SIGINT", "SIGTERM"], resolve));
    await server.close();
    return 0;
  },
});

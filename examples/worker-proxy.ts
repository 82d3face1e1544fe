import { createRegistryProxy, type WaitUntil } from "oci-model-loader/proxy";

const proxy = createRegistryProxy({
  allow: ["dockerhub", "ghcr"], // nothing else is ever contacted
  origins: ["https://app.example.com"], // pages allowed to use it
});

// WaitUntil is the part of Workers' ExecutionContext the proxy uses (to finish caching a blob).
export default { fetch: (request: Request, _env: unknown, ctx: WaitUntil) => proxy(request, ctx) };

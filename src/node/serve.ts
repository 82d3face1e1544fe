import { type Descriptor, MediaType, type Store } from "../index.js";
import { digestProblem } from "../internals.js";
import { parseRange } from "../proxy/blob-cache.js";
import { createFsStore } from "./fs-store.js";
import { listen, type RunningServer } from "./listen.js";

const TAG = /^\w[\w.-]{0,127}$/;
const HEADERS = { "docker-distribution-api-version": "registry/2.0" };

function error(status: number, code: string, message: string): Response {
  return Response.json({ errors: [{ code, message }] }, { status, headers: HEADERS });
}

/**
 * A read-only distribution API over a store holding an OCI layout: `/v2/`, manifests by tag (the
 * layout's ref names) or digest, blobs with `Range`, `tags/list`. Every repository name maps onto
 * the same layout. For local use (development, the demo), not a registry.
 *
 * @param store A store over the layout (`createFsStore(dir)`): its tags are the ref names.
 * @returns A fetch handler, for any server that takes one (`serveLayout` runs it on Node).
 */
export function createLayoutHandler(store: Store): (request: Request) => Promise<Response> {
  const manifestType = async (digest: string, size: number): Promise<string> => {
    const bytes = await new Response(await store.fetch({ digest, size })).text();
    try {
      const mediaType = (JSON.parse(bytes) as { mediaType?: unknown }).mediaType;
      return typeof mediaType === "string" ? mediaType : MediaType.OciManifest;
    } catch {
      return MediaType.OciManifest;
    }
  };
  // Sizes by digest, listed once and again on a miss (the layout may have grown).
  let sizes = new Map<string, number>();
  const blobSize = async (digest: string) => {
    if (!sizes.has(digest)) sizes = new Map((await store.list()).map((b) => [b.digest, b.size]));
    return sizes.get(digest);
  };

  return async (request) => {
    const url = new URL(request.url);
    const head = request.method === "HEAD";
    if (request.method !== "GET" && !head) return error(405, "UNSUPPORTED", "this server is read-only");
    if (url.pathname === "/v2/" || url.pathname === "/v2") return Response.json({}, { headers: HEADERS });
    const match =
      /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname) ??
      /^\/v2\/(.+)\/(tags)\/list$/.exec(url.pathname);
    if (!match) return error(404, "NOT_FOUND", "not a distribution API path");
    const [, name, kind, reference = ""] = match;
    if (kind === "tags") {
      const tags = [...(await store.tags()).keys()].filter((t) => TAG.test(t)).sort();
      return Response.json({ name, tags }, { headers: HEADERS });
    }
    let descriptor: Pick<Descriptor, "digest" | "size" | "mediaType"> | undefined;
    if (reference.includes(":")) {
      if (digestProblem(reference)) return error(400, "DIGEST_INVALID", `invalid digest ${reference}`);
      const size = await blobSize(reference);
      if (size !== undefined) {
        descriptor = {
          digest: reference,
          size,
          mediaType: kind === "manifests" ? await manifestType(reference, size) : "application/octet-stream",
        };
      }
    } else if (kind === "manifests") {
      const tagged = await store.resolve(reference);
      if (tagged && (await store.exists(tagged))) descriptor = tagged;
    }
    if (!descriptor) {
      return kind === "manifests"
        ? error(404, "MANIFEST_UNKNOWN", `manifest ${reference} unknown`)
        : error(404, "BLOB_UNKNOWN", `blob ${reference} unknown`);
    }
    const headers = new Headers({
      ...HEADERS,
      "content-type":
        kind === "manifests" ? (descriptor.mediaType ?? MediaType.OciManifest) : "application/octet-stream",
      "docker-content-digest": descriptor.digest,
      "accept-ranges": "bytes",
    });
    const span = kind === "blobs" ? parseRange(request.headers.get("range"), descriptor.size) : undefined;
    const [start, end] = span ?? [0, descriptor.size - 1];
    const length = Math.max(0, end - start + 1);
    headers.set("content-length", String(length));
    if (span) headers.set("content-range", `bytes ${start}-${end}/${descriptor.size}`);
    const body = head || length === 0 ? null : await store.fetch(descriptor, { offset: start, length });
    return new Response(body, { status: span ? 206 : 200, headers });
  };
}

/**
 * Serves an OCI layout directory read-only over the distribution API (`oci-model serve`).
 *
 * @param dir The OCI layout directory.
 * @param options Where to listen: `port` (default 5050; 0 picks a free one) and `host` (default `127.0.0.1`).
 * @returns The running server: its URL and `close()`.
 */
export function serveLayout(
  dir: string,
  options: { port?: number; host?: string } = {},
): Promise<RunningServer> {
  const handler = createLayoutHandler(createFsStore(dir));
  return listen(handler, options.port ?? 5050, options.host ?? "127.0.0.1");
}

/** Tags: the list, page by page. */
import { OciError } from "../errors.js";
import { MANIFEST_SIZE_LIMIT } from "../oci/manifest.js";
import { type RegistryApi, type RepositoryRef, type RequestOptions, toRepository } from "./api.js";
import { readCapped, responseError } from "./http.js";

const MAX_TAG_PAGES = 10_000;
/** The most bytes of tag lists `listTags` reads, all pages together: over a million tags. */
const TAG_LIST_LIMIT = 64 * 1024 * 1024;

/** All tags of a repository, following `Link` pagination. */
export async function listTags(
  api: RegistryApi,
  repository: RepositoryRef,
  options: RequestOptions & { pageSize?: number } = {},
): Promise<string[]> {
  const ref = toRepository(repository);
  const action = `list tags of ${ref.registry}/${ref.repository}`;
  const tags: string[] = [];
  let url = new URL(`${api.repositoryUrl(ref)}/tags/list`);
  if (options.pageSize) url.searchParams.set("n", String(options.pageSize));
  const seen = new Set<string>();
  let total = 0;
  for (let page = 0; page < MAX_TAG_PAGES; page++) {
    if (seen.has(url.href))
      throw new OciError("REGISTRY_ERROR", `Cannot ${action}: the next page link loops back to ${url.href}`);
    seen.add(url.href);
    const response = await api.requestUrl(url, ref, { action, signal: options.signal });
    if (!response.ok) throw await responseError(response, action);
    const bytes = await readCapped(response, MANIFEST_SIZE_LIMIT, "REGISTRY_ERROR", action);
    total += bytes.byteLength;
    if (total > TAG_LIST_LIMIT) {
      throw new OciError(
        "REGISTRY_ERROR",
        `Cannot ${action}: the tag list runs past the ${TAG_LIST_LIMIT}-byte limit after ${page + 1} pages; is the registry paging in circles?`,
      );
    }
    let body: { tags?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch (cause) {
      throw new OciError("REGISTRY_ERROR", `Cannot ${action}: the response is not JSON`, { cause });
    }
    if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === "string"));
    const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get("link") ?? "")?.[1];
    if (!next) return tags;
    const nextUrl = new URL(next, url);
    if (nextUrl.origin !== url.origin) {
      throw new OciError(
        "REGISTRY_ERROR",
        `Cannot ${action}: the next page is on another origin (${nextUrl.origin})`,
      );
    }
    url = nextUrl;
  }
  throw new OciError("REGISTRY_ERROR", `Cannot ${action}: more than ${MAX_TAG_PAGES} pages`);
}

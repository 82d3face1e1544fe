// A page for the browser push test: packs files into OPFS and pushes them through the proxy.
import { createOpfsStore, type OciError, type PackFile, packModel, pushModel } from "../../src/index.js";

interface PushRequest {
  /** Path → bytes, base64. */
  files: Record<string, string>;
  reference: string;
  proxy: string;
  registry: string;
  username: string;
  password: string;
  chunkSize: number;
}

declare global {
  interface Window {
    pushFiles(request: PushRequest): Promise<Record<string, unknown>>;
  }
}

const decode = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

window.pushFiles = async (request) => {
  const store = createOpfsStore(`push-${crypto.randomUUID()}`);
  const files: PackFile[] = Object.entries(request.files).map(([path, base64]) => {
    const bytes = decode(base64);
    return {
      path,
      size: bytes.byteLength,
      stream: async (offset = 0, length = bytes.byteLength - offset) =>
        new Blob([bytes.subarray(offset, offset + length) as Uint8Array<ArrayBuffer>]).stream(),
    };
  });
  try {
    const packed = await packModel(files, { format: "docker-v0.2", store, tag: "v1" });
    const pushed = await pushModel(store, packed.descriptor, request.reference, {
      proxy: request.proxy,
      credentials: { [request.registry]: { username: request.username, password: request.password } },
      chunkSize: request.chunkSize,
    });
    return { digest: packed.descriptor.digest, pushed };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
};

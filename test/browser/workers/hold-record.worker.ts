// The writer rewriting its checkpoint record as fast as it can, the way opfs-sync.ts "put" does
// (truncate, then write, through a sync access handle), until the page terminates this worker.
type SyncHandle = {
  truncate(size: number): void;
  write(bytes: Uint8Array, options: { at: number }): number;
  close(): void;
};

addEventListener("message", async (event: MessageEvent<{ name: string; digest: string }>) => {
  const top = await (await navigator.storage.getDirectory()).getDirectoryHandle("oci-model-loader");
  const ingest = await (await top.getDirectoryHandle(event.data.name)).getDirectoryHandle("ingest");
  const record = (await ingest.getFileHandle(
    `${event.data.digest.replace(":", "-")}.state`,
  )) as FileSystemFileHandle & {
    createSyncAccessHandle(): Promise<SyncHandle>;
  };
  const text = new Uint8Array(await (await record.getFile()).arrayBuffer());
  postMessage("rewriting");
  for (;;) {
    const handle = await record.createSyncAccessHandle();
    handle.truncate(0);
    handle.write(text, { at: 0 });
    handle.close();
  }
});

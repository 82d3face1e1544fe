import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { PackFile } from "../index.js";
import { fileStream } from "./file-stream.js";

/**
 * A file on disk as a `PackFile` (read as often as packing needs, ranges included).
 *
 * @param path Where the file is on disk.
 * @param name Its path in the model (`/`-separated).
 * @param size Its size in bytes.
 * @returns A `PackFile` that opens the file for each read.
 */
export function packFileFromDisk(path: string, name: string, size: number): PackFile {
  return {
    path: name,
    size,
    stream: async (offset = 0, length = size - offset) => fileStream(path, offset, length),
  };
}

/**
 * Every regular file below `dir` (hidden files and folders left out), as `PackFile`s with `/` paths.
 *
 * @param dir The model folder.
 * @returns Its files, for `packModel`.
 */
export async function packFilesFromDirectory(dir: string): Promise<PackFile[]> {
  const out: PackFile[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    const name = relative(dir, full).split(sep).join("/");
    if (name.split("/").some((part) => part.startsWith("."))) continue;
    out.push(packFileFromDisk(full, name, (await stat(full)).size));
  }
  return out;
}

/** File helpers shared by the CLI commands. */
import fs from "node:fs/promises";
import path from "node:path";

/**
 * Writes next to the target and renames, so an interrupted or failed write never leaves a partial file. `bytes`
 * may be produced piece by piece (an async iterable): a throw while producing removes the partial temp file.
 */
export async function writeAtomically(file: string, bytes: Uint8Array | string | AsyncIterable<Uint8Array>): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

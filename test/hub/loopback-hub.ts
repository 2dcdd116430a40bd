/**
 * Serves the packaged models/barbell-kjv.gguf from the tests' loopback hub (127.0.0.1 only) as the repo
 * `barbell/barbell-kjv-gguf`, for trying `barbell pull` where the public hub cannot be reached (docs/hub.md).
 * Prints the HF_ENDPOINT to use and stops by itself after the given seconds (default 120), or on Ctrl-C.
 *
 *   npx tsx test/hub/loopback-hub.ts [seconds]
 */
import fs from "node:fs";
import path from "node:path";
import { FakeHub } from "./fake-hub.js";

const seconds = Math.min(Math.max(Number(process.argv[2] ?? "120") || 120, 1), 3600);
const root = path.resolve(import.meta.dirname, "..", "..");
const hub = await new FakeHub().start();
hub.repos.set("barbell/barbell-kjv-gguf", {
  commit: "5c58827b0d1f3e6a4c2b9a8d7e6f5a4b3c2d1e0f",
  files: {
    "barbell-kjv.gguf": { content: fs.readFileSync(path.join(root, "models", "barbell-kjv.gguf")), lfs: true },
    "README.md": { content: fs.readFileSync(path.join(root, "models", "barbell-kjv.md")), lfs: false },
  },
});
process.stdout.write(`HF_ENDPOINT=${hub.endpoint} (stops in ${seconds} s)\n`);
const stop = (): void => void hub.stop().then(() => process.exit(0));
setTimeout(stop, seconds * 1000);
process.once("SIGINT", stop);
process.once("SIGTERM", stop);

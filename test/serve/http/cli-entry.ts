/** Runs the barbell CLI from the TypeScript sources (for tests that start `barbell serve` as a child process). */
import { main } from "../../../src/cli/main.js";

process.exitCode = await main(process.argv);

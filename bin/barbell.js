#!/usr/bin/env node
// Entry point of the `barbell` command; the CLI is compiled to dist/ by `npm install` (prepare).
import process from "node:process";
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv);

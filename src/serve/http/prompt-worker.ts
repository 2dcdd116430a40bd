/**
 * The prompt tokenizer's worker thread (prompts.ts): it reads the model's tokenizer and chat template once and
 * turns prompts into token ids off the server's event loop, with the function prompts.ts uses inline
 * (`tokenizePrompt`). Each message is one prompt; each answer carries its id, the token ids (a transferred
 * Int32Array) or the reason the prompt cannot be tokenized.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ConversationMessage, ToolDefinition } from "../../model/chat/index.js";
import { readModelInfo } from "./model-info.js";
import { tokenizePrompt } from "./prompts.js";

export type PromptJob = { readonly id: number } & ({ readonly kind: "chat"; readonly messages: readonly ConversationMessage[]; readonly tools?: readonly ToolDefinition[] } | { readonly kind: "text"; readonly text: string });
export type PromptAnswer = { readonly id: number } & ({ readonly ids: Int32Array } | { readonly refused: string } | { readonly failed: string });

const { path, contextLength } = workerData as { path: string; contextLength: number };
const port = parentPort;
if (port === null) {
  throw new Error("[serve] prompt-worker.ts runs only as a worker thread");
}
const info = await readModelInfo(path, contextLength);
port.on("message", (job: PromptJob) => {
  let answer: PromptAnswer;
  try {
    answer = tokenizePrompt(info, job, job.id);
  } catch (error) {
    answer = { id: job.id, failed: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(answer, "ids" in answer ? [answer.ids.buffer as ArrayBuffer] : []);
});
port.postMessage({ ready: true });

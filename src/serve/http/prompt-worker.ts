/**
 * The prompt tokenizer's worker thread (prompts.ts): it reads the model's tokenizer and chat template once and
 * turns prompts into token ids off the server's event loop. Each message is one prompt; each answer carries its
 * id, the token ids (a transferred Int32Array) or the reason the prompt cannot be tokenized.
 */
import { FormatError } from "../../core/errors.js";
import { parentPort, workerData } from "node:worker_threads";
import type { ConversationMessage, ToolDefinition } from "../../model/chat/index.js";
import { chatTokens, readModelInfo } from "./model-info.js";

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
    if (job.kind === "chat") {
      const built = chatTokens(info, job.messages, job.tools);
      answer = typeof built === "string" ? { id: job.id, refused: built } : { id: job.id, ids: Int32Array.from(built) };
    } else if (info.tokenizer === undefined) {
      answer = { id: job.id, refused: "this model has no tokenizer; send the prompt as token ids" };
    } else {
      answer = { id: job.id, ids: info.tokenizer.encode(job.text) };
    }
  } catch (error) {
    answer =
      error instanceof FormatError
        ? { id: job.id, refused: `the conversation cannot be rendered with this model's chat format: ${error.message}` }
        : { id: job.id, failed: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(answer, "ids" in answer ? [answer.ids.buffer as ArrayBuffer] : []);
});
port.postMessage({ ready: true });

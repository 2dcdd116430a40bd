/** What a loaded model consists of, whatever file it came from. */
import type { Backend } from "../backends/backend.js";
import type { BitnetConfig } from "../model/bitnet/config.js";
import type { BitnetWeights } from "../model/bitnet/weights.js";
import type { Tokenizer } from "../model/tokenizer/types.js";

export interface LoadedModel {
  readonly config: BitnetConfig;
  readonly weights: BitnetWeights;
  /** Absent for a GGUF without tokenizer metadata: the model then works on token ids only. */
  readonly tokenizer: Tokenizer | undefined;
  /** The chat template the file carries (GGUF `tokenizer.chat_template`, HF `chat_template`), if any. */
  readonly chatTemplate: string | undefined;
  readonly backend: Backend;
  /** Where it was loaded from, for messages. */
  readonly source: string;
}

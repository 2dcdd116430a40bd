/**
 * barbell/testing: writers of small random-weight models for tests and examples (not for inference quality).
 */
/** Writes a tiny BitNet GGUF file with seeded random weights (and a matching tokenizer). */
export { makeBitnetFixture, type BitnetFixtureOptions } from "./model/bitnet/fixture.js";
/** Writes a tiny Hugging Face BitNet folder (config.json, tokenizer.json, safetensors) with seeded weights. */
export { writeHfBitnetFixture, type HfBitnetFixtureOptions } from "./model/bitnet/hf-fixture.js";

import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { compileJinjaChat, MAX_TEMPLATE_LENGTH, renderJinjaChat } from "../../src/model/chat/jinja.js";
import type { ChatMessage } from "../../src/model/chat/messages.js";

/**
 * Written from BITNET.md §1.8 #3 (the template the Microsoft converter puts in the 2B-4T GGUF): BOS before the first
 * message, user turns as "Human: " + content + "\n\nBITNETAssistant: " + eos, assistant turns as content + eos,
 * system messages dropped.
 */
const GGUF_TEMPLATE =
  "{% for message in messages %}" +
  "{% if loop.first %}{{ bos_token }}{% endif %}" +
  "{% if message['role'] == 'user' %}" +
  "{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}" +
  "{% elif message['role'] == 'assistant' %}" +
  "{{ message['content'] + eos_token }}" +
  "{% endif %}" +
  "{% endfor %}";

/** A Llama-3-style template: header ids around the role, trimmed content, eot; a generation prompt when asked. */
const LLAMA3_TEMPLATE =
  "{{ bos_token }}" +
  "{% for message in messages %}" +
  "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}" +
  "{{ (message['content'] | trim) + '<|eot_id|>' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** The HF tokenizer_config form (BITNET.md §1.8 #2): capitalized role, ": ", trimmed content, eot. */
const HF_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{{ (message['role'] | capitalize) + ': ' + (message['content'] | trim) + '<|eot_id|>' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

const conversation: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: " Bye " },
];

const llamaOptions = { bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>", addGenerationPrompt: true };

function formatErrorOf(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FormatError) {
      return error;
    }
    throw error;
  }
  throw new Error("expected a FormatError");
}

describe("renderJinjaChat", () => {
  it("renders the 2B-4T GGUF template: BOS first, system dropped, eos after every turn", () => {
    const text = renderJinjaChat(GGUF_TEMPLATE, conversation, {
      bosToken: "<|begin_of_text|>",
      eosToken: "<|end_of_text|>",
      addGenerationPrompt: true,
    });
    expect(text).toBe(
      "<|begin_of_text|>" +
        "Human: Hi\n\nBITNETAssistant: <|end_of_text|>" +
        "Hello.<|end_of_text|>" +
        "Human:  Bye \n\nBITNETAssistant: <|end_of_text|>",
    );
  });

  it("renders a Llama-3-style template with and without the generation prompt", () => {
    const messages = conversation.slice(0, 2);
    const body =
      "<|begin_of_text|>" +
      "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    expect(renderJinjaChat(LLAMA3_TEMPLATE, messages, llamaOptions)).toBe(
      body + "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(renderJinjaChat(LLAMA3_TEMPLATE, messages, { ...llamaOptions, addGenerationPrompt: false })).toBe(body);
  });

  it("renders the HF-config form with capitalized roles and trimmed content", () => {
    expect(renderJinjaChat(HF_TEMPLATE, conversation.slice(1), llamaOptions)).toBe(
      "<|begin_of_text|>User: Hi<|eot_id|>Assistant: Hello.<|eot_id|>User: Bye<|eot_id|>Assistant: ",
    );
  });

  it("compiles a template once and renders it many times", () => {
    const render = compileJinjaChat(LLAMA3_TEMPLATE);
    const a = render([{ role: "user", content: "a" }], llamaOptions);
    const b = render([{ role: "user", content: "b" }], llamaOptions);
    expect(a).not.toBe(b);
    expect(a).toContain("\n\na<|eot_id|>");
  });

  it.each([
    ["an unclosed for block", "{% for m in messages %}{{ m['content'] }}"],
    ["an unterminated expression", "{{ messages[0]['content'"],
    ["an unknown tag", "{% frobnicate %}"],
  ])("turns a template with %s into a bad-value FormatError carrying the engine's message", (_name, template) => {
    const error = formatErrorOf(() => renderJinjaChat(template, conversation, llamaOptions));
    expect(error.code).toBe("bad-value");
    expect(error.message).toMatch(/^\[chat\] chat template does not parse: ./);
  });

  it("turns a render-time failure into a bad-value FormatError", () => {
    const template = "{{ messages[0]['content'].nope() }}";
    const error = formatErrorOf(() => renderJinjaChat(template, conversation, llamaOptions));
    expect(error.code).toBe("bad-value");
    expect(error.message).toMatch(/failed to render/);
  });

  it("passes the template's own raise_exception message through", () => {
    const template =
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}";
    const error = formatErrorOf(() => renderJinjaChat(template, conversation, llamaOptions));
    expect(error.message).toContain("System role not supported");
  });

  it("rejects too long a template with a limit FormatError and bad messages with a bad-value one", () => {
    const huge = "x".repeat(MAX_TEMPLATE_LENGTH + 1);
    expect(formatErrorOf(() => renderJinjaChat(huge, [], llamaOptions)).code).toBe("limit");
    const bad = [{ role: "robot", content: "x" }] as unknown as ChatMessage[];
    expect(formatErrorOf(() => renderJinjaChat(HF_TEMPLATE, bad, llamaOptions)).code).toBe("bad-value");
    const notText = 42 as unknown as string;
    expect(formatErrorOf(() => renderJinjaChat(notText, [], llamaOptions)).code).toBe("bad-value");
  });
});

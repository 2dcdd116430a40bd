/** Chat messages and the formats that turn them into a prompt. */
export { CHAT_ROLES, MAX_CHAT_MESSAGES, MAX_MESSAGE_LENGTH, validateMessages } from "./messages.js";
export type { ChatMessage, ChatRole } from "./messages.js";
export {
  BITNET_2B4T_SPECIALS,
  BITNET_CHAT_HEADERS,
  bitnetStopTokens,
  formatBitnetChat,
  pythonStrip,
} from "./bitnet.js";
export type { BitnetChatSpecials, Tokenize } from "./bitnet.js";
export { compileJinjaChat, MAX_TEMPLATE_LENGTH, renderJinjaChat, renderJinjaContext } from "./jinja.js";
export type { JinjaChatOptions } from "./jinja.js";
export {
  DEFAULT_TOOL_FORMAT,
  defaultToolMessages,
  defaultToolsPrompt,
  hasToolContent,
  renderToolChat,
  templateUsesTools,
  toolCallFormat,
} from "./tools.js";
export type { ConversationMessage, ConversationRole, ToolCall, ToolCallFormat, ToolDefinition } from "./tools.js";

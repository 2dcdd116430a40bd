/** The actor runtime (docs/actors.md): typed actors, supervision, and worker/process isolation. */
export { ActorError, type ActorErrorCode, type RemoteErrorInfo } from "./errors.js";
export { systemClock, ManualClock, settle, type Clock, type Timer } from "./clock.js";
export { Mailbox } from "./mailbox.js";
export { DeadLetters, type DeadLetter, type DeadLetterReason } from "./dead-letters.js";
export * from "./limits.js";
export {
  defineActor,
  type ActorContext,
  type ActorDefinition,
  type ActorRef,
  type ActorStatus,
  type AskMessage,
  type AskOptions,
  type Behavior,
  type Handlers,
  type HandlerResult,
  type Isolation,
  type ItemOf,
  type MessageBase,
  type Replies,
  type ReplyOf,
  type ReplyStream,
  type SpawnOptions,
  type StopOptions,
  type StreamMessage,
  type StreamOptions,
  type Streams,
  type TellMessage,
  type Termination,
  type Variant,
} from "./protocol.js";
export { protocol, msg, t, type FieldType, type Infer, type MessageOf, type ProtocolCodec, type VariantSpec } from "./schema.js";
export {
  DEFAULT_SUPERVISION,
  backoffDelay,
  RestartWindow,
  type BackoffOptions,
  type Directive,
  type SupervisionEvent,
  type SupervisionOptions,
} from "./supervision.js";
export { ActorSystem, createActorSystem, type ActorSystemOptions, type Escalation } from "./system.js";
export { actorModule } from "./module.js";
export { encodeFrame, decodeFrame, FRAME_MAGIC, FRAME_VERSION, type Frame } from "./remote/frames.js";

/** Serving: the model actor, its worker, fault injection and the cascade router (docs/actors.md, "Serving"). */
export { ServeError, InjectedFault, KernelFailure, type ServeErrorCode } from "./errors.js";
export { withFaults, checkFaultPlan, type FaultPlan, type FaultAction, type FaultStats, type FaultOptions } from "./faults.js";
export { serveSwitch, type BackendSwitch } from "./switch.js";
export { ModelHost, entropyEstimate, checkHostConfig, type ModelRung, type ModelHostConfig, type ModelHostOptions, type ExpandTarget, type ExpandResult } from "./host.js";
export {
  DEFAULT_MAX_TOKENS,
  modelWorkerProtocol,
  type ModelRequest,
  type ModelOutput,
  type BackendFailure,
  type WorkerStatus,
  type Degradation,
  type ModelWorkerMsg,
} from "./protocol.js";
export { checkRequest, type CheckedRequest } from "./request.js";
export { modelWorker, type ModelWorkerConfig } from "./worker.js";
export {
  modelActor,
  toWireRequest,
  type ModelActorOptions,
  type ModelMsg,
  type ModelStatus,
  type ExpandReply,
  type FailureRecord,
  type DegradationRecord,
} from "./model-actor.js";
export {
  cascadeRouter,
  confidenceScore,
  type CascadeOptions,
  type CascadeOutput,
  type CascadeStep,
  type ConfidenceMetric,
  type RouterMsg,
  type RouterStatus,
} from "./router.js";

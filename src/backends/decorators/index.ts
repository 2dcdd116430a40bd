/** Decorators over the dispatcher's op hook (dispatch.ts): each wraps how an op call runs. */
export { autotune, TUNED_KERNELS } from "./autotune.js";
export { faultInjector, type FaultAction, type FaultInjector, type FaultRule, type FaultStats } from "./faults.js";
export { createSwitch, type BackendSwitch, type SwitchOptions } from "./switch.js";
export { tracing } from "./trace.js";

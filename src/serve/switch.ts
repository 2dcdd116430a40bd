/**
 * The serving host's fallback switch: the switch decorator of src/backends/decorators over the home
 * dispatcher (the one whose memory holds the model), with every op failure reported as a
 * {@link KernelFailure} naming the op and the dispatcher that ran it, so the host can tell a backend failure
 * from a bad request and move the request to the next dispatcher.
 */
import { createSwitch, type BackendSwitch } from "../backends/decorators/switch.js";
import type { Dispatcher } from "../backends/dispatch.js";
import { KernelFailure } from "./errors.js";

export type { BackendSwitch };

export function serveSwitch(home: Dispatcher): BackendSwitch {
  return createSwitch(home, {
    mapError: (error, op, backend) => (error instanceof KernelFailure ? error : new KernelFailure(op, backend, error)),
  });
}

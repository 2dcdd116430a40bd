/**
 * The fallback switch: a view of one dispatcher (the home: its memory holds the model) whose op calls run on
 * whichever dispatcher is active. Switching needs no copy of the model: the home's buffers stay where they
 * are, and the active dispatcher places each call's operands itself (it reads host buffers in place and
 * copies a host input across the host/device boundary when one of its members keeps device memory). A
 * throw from the active dispatcher can be mapped (the serving host turns it into a KernelFailure naming the
 * op and the dispatcher).
 */
import { decorate, type Dispatcher, type OpName } from "../dispatch.js";

export interface SwitchOptions {
  /** Maps an error thrown by an op on `backend` (the active dispatcher's name); default: rethrown as is. */
  readonly mapError?: (error: unknown, op: OpName, backend: string) => unknown;
}

export interface BackendSwitch {
  /** The backend to compute with: the home's memory, the active dispatcher's kernels and fused steps. */
  readonly backend: Dispatcher;
  readonly home: Dispatcher;
  readonly active: Dispatcher;
  /** Runs later op calls on `target` (its memory is not used). */
  use(target: Dispatcher): void;
}

export function createSwitch(home: Dispatcher, options: SwitchOptions = {}): BackendSwitch {
  let active = home;
  const mapError = options.mapError;
  const backend = decorate(
    home,
    (next) => ({
      run: (op, args) => {
        const target = active;
        try {
          (target === home ? next : target.hook).run(op, args);
        } catch (error) {
          throw mapError === undefined ? error : mapError(error, op, target.name);
        }
      },
      fuses: (op) => (active === home ? next : active.hook).fuses(op),
      layers: () => (active === home ? next : active.hook).layers?.(),
    }),
    () => active.name,
  );
  return {
    backend,
    home,
    get active() {
      return active;
    },
    use: (target) => {
      active = target;
    },
  };
}

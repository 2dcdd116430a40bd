/**
 * The tracing decorator: tells `onOp` about every op call (a kernel or a fused step, with its arguments in
 * the op table's order) before it runs, and passes it on. For counting and profiling.
 */
import type { Decorator, OpName } from "../dispatch.js";

export function tracing(onOp: (op: OpName, args: readonly unknown[]) => void): Decorator {
  return (next) => ({
    fuses: next.fuses,
    run: (op, args) => {
      onOp(op, args);
      next.run(op, args);
    },
  });
}

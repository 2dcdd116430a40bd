/**
 * The control block through which the main thread hands kernel jobs to the wasm-simd workers: a few int32
 * words and the job's float64 arguments, in the shared linear memory (a block the allocator reserved).
 *
 *   int32 word      meaning
 *   gen      (0)    job generation: the main thread bumps it (and notifies) to start a job; workers wait on it
 *   op       (1)    index of the export to call (EXPORT_NAMES), or −1: stop
 *   argc     (2)    number of arguments before the range pair
 *   parts    (3)    participants in this job (main thread = part 0, worker i = part i); workers ≥ parts idle
 *   total    (4)    size of the split range (contiguous mode)
 *   align    (5)    granularity of the contiguous split
 *   mode     (6)    0: part p gets [lo, hi) of 0..total; 1: part p gets (first = p, step = parts)
 *   scratchArg (7)  index of the argument that points at per-thread scratch, or −1
 *   scratchStride (8) bytes between the scratch blocks of consecutive parts
 *   error    (9)    0, or 1 + the index of a worker whose call threw
 *   pending  (16)   workers that have not finished the job (its own cache line); the main thread waits on it
 *   float64 args at byte 128, at most 24.
 */

/** Word indices and sizes of the control block (also serialized into the worker's source). */
export const CONTROL = {
  gen: 0,
  op: 1,
  argc: 2,
  parts: 3,
  total: 4,
  align: 5,
  mode: 6,
  scratchArg: 7,
  scratchStride: 8,
  error: 9,
  pending: 16,
  ints: 32,
  argsOffset: 128,
  maxArgs: 24,
  bytes: 128 + 24 * 8,
} as const;

/** How a job's range is split between its parts. */
export const SPLIT_CONTIGUOUS = 0;
/** Part p takes p, p + parts, p + 2·parts, … (the kernel receives first = p and step = parts). */
export const SPLIT_STRIDED = 1;

/**
 * The range pair part `part` of `parts` passes to the kernel: [lo, hi) of 0..total in whole `align` units
 * (contiguous mode), or (first, step) = (part, parts) (strided mode). The worker source computes the same.
 */
export function partRange(mode: number, total: number, align: number, part: number, parts: number): [number, number] {
  if (mode === SPLIT_STRIDED) {
    return [part, parts];
  }
  const units = Math.ceil(total / align);
  const lo = Math.floor((units * part) / parts) * align;
  const hi = Math.min(total, Math.floor((units * (part + 1)) / parts) * align);
  return [Math.min(lo, total), hi];
}

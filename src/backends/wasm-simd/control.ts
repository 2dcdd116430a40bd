/**
 * The control block through which the main thread hands kernel jobs to the wasm-simd workers: a few int32
 * words and the job's float64 arguments, in the shared linear memory (a block the allocator reserved).
 *
 * A job's range is cut into `chunks` pieces that the threads claim one at a time (the main thread too), so a
 * worker the OS has descheduled delays the call by at most the chunk it holds, not by a fixed share.
 *
 *   int32 word        meaning
 *   gen        (0)    job generation: the main thread bumps it (and notifies) to start a job; workers wait on it
 *   stop       (1)    1: workers leave their loop
 *   op         (2)    index of the export to call (EXPORT_NAMES)
 *   argc       (3)    number of arguments before the range pair
 *   chunks     (4)    pieces of the range
 *   total      (5)    size of the range (contiguous mode)
 *   align      (6)    granularity of the contiguous split
 *   mode       (7)    0: chunk c gets [lo, hi) of 0..total; 1: chunk c gets (first = c, step = chunks)
 *   scratchArg (8)    index of the argument that points at per-thread scratch, or −1
 *   scratchStride (9) bytes between the scratch blocks of consecutive threads (main thread 0, worker i: i)
 *   error      (10)   0, or 1 + the index of a worker whose call threw
 *   claim      (16)   chunks not yet claimed (own cache line); a thread claims chunk claim − 1 by CAS
 *   done       (32)   chunks finished (own cache line); the main thread waits until it equals chunks
 *   workerChunks (33) chunks the workers have finished since they started (all jobs; diagnostics)
 *   float64 args at byte 192, at most 24.
 *
 * A claim succeeds only while the current job has unclaimed chunks, and the main thread rewrites a job only
 * after all its chunks are done (and publishes a new claim count after the arguments), so a thread reads
 * the arguments after its claim and always sees those of the job it claimed from.
 */

/** Word indices and sizes of the control block (also serialized into the worker's source). */
export const CONTROL = {
  gen: 0,
  stop: 1,
  op: 2,
  argc: 3,
  chunks: 4,
  total: 5,
  align: 6,
  mode: 7,
  scratchArg: 8,
  scratchStride: 9,
  error: 10,
  claim: 16,
  done: 32,
  workerChunks: 33,
  ints: 48,
  argsOffset: 192,
  maxArgs: 24,
  bytes: 192 + 24 * 8,
} as const;

/** How a job's range is split between its parts. */
export const SPLIT_CONTIGUOUS = 0;
/** Chunk c takes c, c + chunks, c + 2·chunks, … (the kernel receives first = c and step = chunks). */
export const SPLIT_STRIDED = 1;

/**
 * The range pair chunk `part` of `parts` passes to the kernel: [lo, hi) of 0..total in whole `align` units
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

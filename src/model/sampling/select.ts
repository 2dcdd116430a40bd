/**
 * Ranking helpers shared by the sampler: ordering by value with ties broken by the lower index, a bounded heap
 * for top-k, and float64 log-softmax. "Better" always means a higher value, or an equal value at a lower index,
 * so every ranking here is a total order and results never depend on sort stability.
 */

/** True when candidate `a` ranks strictly before `b`. */
function better(values: ArrayLike<number>, a: number, b: number): boolean {
  const va = values[a] ?? Number.NEGATIVE_INFINITY;
  const vb = values[b] ?? Number.NEGATIVE_INFINITY;
  return va > vb || (va === vb && a < b);
}

/** Sorts `indices` in place, best first (higher value, then lower index). */
export function sortByValue(values: ArrayLike<number>, indices: Int32Array): Int32Array {
  return indices.sort((a, b) => {
    const va = values[a] ?? Number.NEGATIVE_INFINITY;
    const vb = values[b] ?? Number.NEGATIVE_INFINITY;
    return va > vb ? -1 : va < vb ? 1 : a - b;
  });
}

/**
 * The `k` best of `candidates` (or all of them when there are no more than k), best first.
 * Runs in O(n log k) with a min-heap whose root is the worst kept candidate.
 */
export function topIndices(values: ArrayLike<number>, candidates: Int32Array, k: number): Int32Array {
  if (k >= candidates.length) {
    return sortByValue(values, candidates.slice());
  }
  const heap = new Int32Array(k);
  let size = 0;
  const siftDown = (start: number): void => {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) {
        return;
      }
      const right = left + 1;
      let worst = left;
      if (right < size && better(values, heap[left] ?? 0, heap[right] ?? 0)) {
        worst = right;
      }
      const here = heap[i] ?? 0;
      const child = heap[worst] ?? 0;
      if (!better(values, here, child)) {
        return;
      }
      heap[i] = child;
      heap[worst] = here;
      i = worst;
    }
  };
  for (const index of candidates) {
    if (size < k) {
      // Sift up: move the new candidate above any parent that is better than it.
      let i = size++;
      heap[i] = index;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const p = heap[parent] ?? 0;
        if (!better(values, p, index)) {
          break;
        }
        heap[i] = p;
        heap[parent] = index;
        i = parent;
      }
    } else if (better(values, index, heap[0] ?? 0)) {
      heap[0] = index;
      siftDown(0);
    }
  }
  return sortByValue(values, heap);
}

/** The index of the best value (highest; ties to the lowest index) among `candidates`, or -1 if there are none. */
export function argmax(values: ArrayLike<number>, candidates: Int32Array): number {
  let best = -1;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (const index of candidates) {
    const v = values[index] ?? Number.NEGATIVE_INFINITY;
    if (best < 0 || v > bestValue || (v === bestValue && index < best)) {
      best = index;
      bestValue = v;
    }
  }
  return best;
}

/**
 * The two parts of log(Σ exp(x)) over all of `values`, in float64: the maximum and log Σ exp(x − max).
 * A log-probability is `(x − max) − logSum`; keeping the parts apart stops a huge maximum from absorbing logSum.
 * `max` is -Infinity when every value is -Infinity (or there are none). A caller that has just found the maximum
 * passes it as `knownMax` (it must be the maximum) to skip that pass.
 */
export function logNormalizer(values: ArrayLike<number>, knownMax?: number): { max: number; logSum: number } {
  let max = knownMax ?? Number.NEGATIVE_INFINITY;
  for (let i = 0; knownMax === undefined && i < values.length; i++) {
    const v = values[i] ?? Number.NEGATIVE_INFINITY;
    if (v > max) {
      max = v;
    }
  }
  if (max === Number.NEGATIVE_INFINITY) {
    return { max, logSum: 0 };
  }
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += Math.exp((values[i] ?? Number.NEGATIVE_INFINITY) - max);
  }
  return { max, logSum: Math.log(sum) };
}

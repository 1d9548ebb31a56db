// What the node benchmark drivers share.

/** The test harness ties cleanup to a test; a benchmark cleans up at the end of a run instead:
 * pass this where the harness wants a test context, and `close()` it when done. */
export function scope() {
  const cleanups = [];
  return { after: (fn) => cleanups.push(fn), close: async () => { for (const fn of cleanups.reverse()) await fn(); } };
}

/** The `p`th percentile (0–100) of `values`. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

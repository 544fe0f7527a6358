// What we know of this machine's peak, for "% of peak" columns: float32 sgemm in OpenBLAS measured on the project's
// machines (../shared/design/ANCHORS.md). Override with LLMTS_PEAK_GFLOPS=<number> on another machine.
import os from 'node:os';

export function peakGflops(threads = os.availableParallelism()) {
  if (process.env.LLMTS_PEAK_GFLOPS) return Number(process.env.LLMTS_PEAK_GFLOPS);
  return threads >= 2 ? 330 : 169;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

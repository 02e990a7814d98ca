/**
 * Keeps a background run to a share of the process's time, so the requests a node serves while
 * GC runs in it keep their latency: after every `sliceMs` of work, every worker of the run
 * waits together for as long as the share allows (`duty` 0.5: work 20 ms, rest 20 ms).
 */
export class Pacer {
  private sliceStart = performance.now();
  private resting: Promise<void> | undefined;

  constructor(
    private readonly duty: number,
    private readonly sliceMs = 20,
  ) {}

  async pace(): Promise<void> {
    if (this.duty >= 1) return;
    if (this.resting) return this.resting;
    const busy = performance.now() - this.sliceStart;
    if (busy < this.sliceMs) return;
    this.resting = new Promise<void>((r) => setTimeout(r, busy * (1 / this.duty - 1))).then(() => {
      this.resting = undefined;
      this.sliceStart = performance.now();
    });
    return this.resting;
  }
}

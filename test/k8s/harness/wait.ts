// Bounded waiting: every wait in the harness has a deadline and says what it waited for.

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every intervalMs until it returns a value other than undefined, or throws after
 * timeoutMs with `describe()` (e.g. a log tail) in the message. `check` errors count as not ready.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: {
    timeoutMs: number;
    intervalMs?: number;
    describe?: () => string;
    abort?: () => string | undefined;
  },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError = '';
  for (let attempt = 0; ; attempt++) {
    const aborted = opts.abort?.();
    if (aborted) throw new Error(`${what}: ${aborted}\n${opts.describe?.() ?? ''}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${opts.timeoutMs} ms waiting for ${what}` +
          (lastError ? ` (last error: ${lastError})` : '') +
          `\n${opts.describe?.() ?? ''}`,
      );
    }
    await sleep(Math.min(opts.intervalMs ?? 250, Math.max(10, deadline - Date.now())));
  }
}

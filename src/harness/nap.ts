/**
 * An interruptible sleep for the harness's long-running clients (subscribers, consumers), whose
 * `stop()` must not wait out a reconnect backoff.
 */

/**
 * Resolves after `ms`, or as soon as the wake function handed to `onWake` is called, or when
 * `ended` settles, whichever comes first.
 */
export function nap(ms: number, onWake: (wake: () => void) => void, ended?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      resolve()
    }
    onWake(done)
    void ended?.then(done, done)
  })
}

/**
 * How `sledlog node` reads stop signals. Tools often deliver one request to stop as several
 * signals within milliseconds (GNU `timeout` signals the child and then its whole process group;
 * a terminal's Ctrl-C reaches every process of the foreground group; supervisors retry), so
 * signals within a short window after the first are the same request. Only a later, deliberate
 * signal means "stop now, whatever is lost".
 */

/** Signals within this long after the first are repeats of it (documented in `node --help`). */
export const SIGNAL_REPEAT_WINDOW_MS = 1000

/** What a received signal asks for. */
export type SignalAction = 'stop' | 'repeat' | 'force'

/** Classifies the stop signals of one process, in the order they arrive. */
export class StopSignals {
  #first: number | null = null
  readonly #windowMs: number

  constructor(windowMs = SIGNAL_REPEAT_WINDOW_MS) {
    this.#windowMs = windowMs
  }

  /** True once a stop was requested. */
  get stopping(): boolean {
    return this.#first !== null
  }

  /** The action for a signal received at `now` (ms). */
  receive(now: number): SignalAction {
    if (this.#first === null) {
      this.#first = now
      return 'stop'
    }
    return now - this.#first <= this.#windowMs ? 'repeat' : 'force'
  }
}

/**
 * A one-line progress bar on stderr for long work (verify, bulk import). Drawn only when stderr
 * is a terminal: in a pipe or a log file a bar is noise, so there it does nothing at all.
 */
import type { OutStream } from './io.js'

/** Redraw at most this often: a bar must not cost the work it reports on. */
const REDRAW_MS = 100
const BAR_CELLS = 24

/** Progress of one piece of work. */
export interface Progress {
  /** Sets the amount done (and, once known, the total). */
  update(done: number, total?: number): void
  /** Removes the bar. */
  finish(): void
}

const NO_PROGRESS: Progress = { update: () => undefined, finish: () => undefined }

/**
 * A progress bar on `stream` when it is a TTY, else a no-op. `unit` names what is counted
 * (`records`, `events`); without a total it shows a count and a rate.
 */
export function progressBar(stream: OutStream, label: string, unit: string, now: () => number = Date.now): Progress {
  if (stream.isTTY !== true) return NO_PROGRESS
  const started = now()
  let lastDraw = 0
  let done = 0
  let total: number | undefined
  let drawn = false
  const draw = (): void => {
    const secs = Math.max((now() - started) / 1000, 0.001)
    const rate = `${compact(done / secs)} ${unit}/s`
    let line: string
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, done / total)
      const filled = Math.round(frac * BAR_CELLS)
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_CELLS - filled)}]`
      const percent = `${String(Math.floor(frac * 100)).padStart(3)}%`
      line = `${label} ${bar} ${percent} ${compact(done)}/${compact(total)} ${unit} ${rate}`
    } else {
      line = `${label} ${compact(done)} ${unit} ${rate}`
    }
    // A pseudo-terminal may report 0 columns; assume the classic width then.
    const width = stream.columns !== undefined && stream.columns > 0 ? stream.columns : 80
    // \r and erase-line: redraw in place without leaving a trail when the line gets shorter.
    stream.write(`\r\x1b[2K${line.slice(0, Math.max(10, width - 1))}`)
    drawn = true
  }
  return {
    update(n, t) {
      done = n
      if (t !== undefined) total = t
      const at = now()
      if (at - lastDraw < REDRAW_MS) return
      lastDraw = at
      draw()
    },
    finish() {
      if (drawn) stream.write('\r\x1b[2K')
      drawn = false
    },
  }
}

/** 1234567 → "1.2M". */
function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`
  return String(Math.round(n))
}

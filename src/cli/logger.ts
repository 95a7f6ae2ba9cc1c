/**
 * The node's structured log: pino, one JSON object per line on stderr (stdout carries the one
 * machine-read "listening" line), ISO timestamps and level names rather than numbers, so the lines
 * read well in `docker logs` and parse in any log shipper.
 */
import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from '../config/settings.js'

export type { Logger }

/**
 * Creates the logger. Writes are synchronous: a node logs rarely, and a process that exits right
 * after logging (fatal start errors, the end of shutdown) must not lose its last lines.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 2, sync: true }),
  )
}

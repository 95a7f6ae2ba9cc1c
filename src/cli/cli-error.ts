/**
 * How a command fails: an error that carries its exit code. Exit codes are part of the CLI's
 * contract (scripts and orchestrators branch on them): 0 ok, 1 runtime failure or problems
 * found, 2 bad usage or configuration.
 */

/** The exit codes of every command. */
export const EXIT = {
  OK: 0,
  /** The command ran and failed, or found problems (verify). */
  FAILURE: 1,
  /** Bad flags, arguments or configuration: nothing was done. */
  USAGE: 2,
} as const

/** An exit code. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** A failure the CLI reports as one line (no stack trace) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.FAILURE,
    /** Stable error code, when the failure has one (a node's API error code, say). */
    readonly code?: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

/** Bad usage: exits 2 and points at the command's --help. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.USAGE)
    this.name = 'UsageError'
  }
}

/**
 * The shape of a `sledlog` subcommand: its help text and how it runs.
 */
import { EXIT } from './cli-error.js'
import { write, type CliIo } from './io.js'

/** A subcommand. */
export interface Command {
  readonly name: string
  /** Full `--help` text. */
  readonly help: string
  /** Runs with the arguments after the command name; resolves with the exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>
}

/** Prints a command's help on stdout; exit 0. */
export async function help(io: CliIo, command: Command): Promise<number> {
  await write(io.stdout, `${command.help}\n`)
  return EXIT.OK
}

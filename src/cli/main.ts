/**
 * The `sledlog` command line: dispatches to a subcommand and maps failures to exit codes
 * (0 ok, 1 runtime failure or problems found, 2 bad usage or configuration).
 */
import { readFileSync } from 'node:fs'
import { redactUrls } from '../config/redact.js'
import { isSledlogError } from '../errors.js'
import { CliError, EXIT, UsageError } from './cli-error.js'
import type { Command } from './command.js'
import { processIo, write, type CliIo } from './io.js'
import { visibleLines } from './visible.js'

/** A subcommand as the usage lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  readonly name: string
  readonly summary: string
  load(): Promise<Command>
}

/**
 * Every subcommand, in the order the usage lists them. Loaded lazily: `sledlog read --url`
 * should not pay for loading LevelDB, Yjs and the replication stack it never uses.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'node',
    summary: 'run a node (HTTP API + replication) until SIGTERM/SIGINT',
    load: async () => (await import('./commands/node.js')).node,
  },
  {
    name: 'keygen',
    summary: 'create a node key and print its sled id',
    load: async () => (await import('./commands/keygen.js')).keygen,
  },
  { name: 'id', summary: "print a node's sled id", load: async () => (await import('./commands/keygen.js')).id },
  {
    name: 'rotate-key',
    summary: 'move a stopped node to a new key (succession endorsed by the old one)',
    load: async () => (await import('./commands/rotate-key.js')).rotateKeyCommand,
  },
  {
    name: 'revoke-key',
    summary: "retire a sled's key from a seq on (signed by the key itself or an admin key)",
    load: async () => (await import('./commands/revoke-key.js')).revokeKey,
  },
  {
    name: 'token',
    summary: 'create, list or revoke API tokens',
    load: async () => (await import('./commands/token.js')).token,
  },
  {
    name: 'append',
    summary: 'append one event (flags) or many (NDJSON on stdin)',
    load: async () => (await import('./commands/append.js')).append,
  },
  {
    name: 'read',
    summary: 'print entries in (sled, seq) order as NDJSON or a table',
    load: async () => (await import('./commands/read.js')).read,
  },
  {
    name: 'tail',
    summary: "follow a running node's log live (NDJSON)",
    load: async () => (await import('./commands/tail.js')).tail,
  },
  {
    name: 'status',
    summary: "show a node's heads, peers, rejections and health",
    load: async () => (await import('./commands/status.js')).status,
  },
  {
    name: 'recover',
    summary: 'after a lost disk: accept the head a node holds, or move it to a new key (--new-key)',
    load: async () => (await import('./commands/recover.js')).recover,
  },
  {
    name: 'export',
    summary: 'write the signed records as NDJSON anyone can verify against the protocol',
    load: async () => (await import('./commands/export.js')).exportCommand,
  },
  {
    name: 'backup',
    summary: 'write a consistent backup of a node (all records, fork proofs, consumers; not its key)',
    load: async () => (await import('./commands/backup.js')).backup,
  },
  {
    name: 'restore',
    summary: 'restore a backup into a new data directory (every signature checked, none re-signed)',
    load: async () => (await import('./commands/restore.js')).restore,
  },
  {
    name: 'verify',
    summary: "check a stopped node's data directory, or an export file (every signature)",
    load: async () => (await import('./commands/verify.js')).verify,
  },
  {
    name: 'harness',
    summary: 'run a local cluster under seeded faults and check every invariant',
    load: async () => (await import('./commands/harness.js')).harness,
  },
]

/** The top-level usage text. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return `Usage: sledlog <command> [options]

A signed, replicated, grow-only event log.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'sledlog <command> --help' for a command's options. 'sledlog --version' prints the version.
Exit codes: 0 ok, 1 runtime failure or problems found, 2 bad usage or configuration.`
}

/** The package version (package.json sits two levels above src/cli, three above dist/src/cli). */
function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'sledlog' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // try the next location
    }
  }
  return 'unknown'
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined) {
    await write(io.stderr, `${usage()}\n`)
    return EXIT.USAGE
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    await write(io.stdout, `${usage()}\n`)
    return EXIT.OK
  }
  if (name === '--version' || name === '-v') {
    await write(io.stdout, `${version()}\n`)
    return EXIT.OK
  }
  const entry = COMMANDS.find((c) => c.name === name)
  if (entry === undefined) {
    await write(io.stderr, `sledlog: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`)
    return EXIT.USAGE
  }
  const command = await entry.load()
  try {
    return await command.run(rest, io)
  } catch (err) {
    return report(err, command, io)
  }
}

/**
 * Prints a failure as one clear line (no stack for expected failures) and picks the exit code.
 * Messages quote nodes, files and input: URL credentials are removed and control characters
 * escaped, whatever produced the message.
 */
async function report(err: unknown, command: Command, io: CliIo): Promise<number> {
  const say = (text: string): Promise<void> =>
    write(io.stderr, `sledlog ${command.name}: ${visibleLines(redactUrls(text))}\n`)
  if (err instanceof UsageError) {
    await say(`${err.message}\nRun 'sledlog ${command.name} --help' for usage.`)
    return EXIT.USAGE
  }
  if (err instanceof CliError) {
    await say(err.message)
    return err.exitCode
  }
  if (isSledlogError(err)) {
    await say(`${err.code}: ${err.message}`)
    return err.code === 'CONFIG_INVALID' ? EXIT.USAGE : EXIT.FAILURE
  }
  const e = err as NodeJS.ErrnoException
  // System errors (EACCES, EADDRINUSE…) are operator problems, not bugs: no stack trace.
  if (typeof e?.code === 'string' && typeof e.syscall === 'string') {
    await say(e.message)
    return EXIT.FAILURE
  }
  await say(`unexpected error: ${e?.stack ?? String(err)}`)
  return EXIT.FAILURE
}

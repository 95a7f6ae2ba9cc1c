/**
 * `sledlog keygen` and `sledlog id`: create a node's key, print its sled id.
 */
import { resolveDataDir } from '../../config/resolve.js'
import { initDataDir } from '../../node/init-data-dir.js'
import { keyPath, loadIdentity } from '../../store/identity.js'
import { parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { write, type CliIo } from '../io.js'

const OPTIONS = {
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

function dataDir(values: { data?: string | undefined }, io: CliIo, command: string): string {
  const dir = resolveDataDir(values.data, io.env)
  if (dir === undefined) throw new UsageError(`${command} needs --data DIR (or SLEDLOG_DATA)`)
  return dir
}

/** `sledlog keygen`. */
export const keygen: Command = {
  name: 'keygen',
  help: `Usage: sledlog keygen --data DIR

Creates the node key DIR/sled.key (mode 0600) and its empty database DIR/db unless a key
exists, and prints the sled id (64 hex characters) on stdout. Run it before starting a node
when you need the id in advance, e.g. for the peers' --allow lists. (A node that finds a key
but no database recovers its head from its peers first: it may have lost a disk.)

Options:
  --data DIR   data directory (default: $SLEDLOG_DATA)

Exit codes: 0 ok; 1 the existing key cannot be used (KEY_FILE_PERMISSIONS, KEY_FILE_CORRUPT);
2 bad usage.`,
  async run(argv, io) {
    const values = parseFlags(argv, OPTIONS)
    if (values.help === true) return help(io, keygen)
    const dir = dataDir(values, io, 'keygen')
    const existing = await loadIdentity(dir)
    if (existing !== undefined) {
      await write(io.stderr, `sledlog: ${keyPath(dir)} already exists; keeping it\n`)
      await write(io.stdout, `${existing.sled}\n`)
      return EXIT.OK
    }
    const { keys } = await initDataDir(dir)
    await write(io.stdout, `${keys.sled}\n`)
    return EXIT.OK
  },
}

/** `sledlog id`. */
export const id: Command = {
  name: 'id',
  help: `Usage: sledlog id --data DIR

Prints the sled id of the node key in DIR. Never creates a key.

Options:
  --data DIR   data directory (default: $SLEDLOG_DATA)

Exit codes: 0 ok; 1 no key, or the key cannot be used (KEY_FILE_PERMISSIONS, KEY_FILE_CORRUPT);
2 bad usage.`,
  async run(argv, io) {
    const values = parseFlags(argv, OPTIONS)
    if (values.help === true) return help(io, id)
    const dir = dataDir(values, io, 'id')
    const keys = await loadIdentity(dir)
    if (keys === undefined) throw new CliError(`no key in ${dir} (create one with: sledlog keygen --data ${dir})`)
    await write(io.stdout, `${keys.sled}\n`)
    return EXIT.OK
  },
}

/**
 * `sledlog rotate-key` and `sledlog recover --new-key`: move a stopped node to a successor key
 * whose first entry is a succession record (docs/PROTOCOL.md §3.5; src/node/key-rotation.ts).
 */
import { resolveDataDir } from '../../config/resolve.js'
import { isSledId, type SledId } from '../../core/ids.js'
import { rotateKey, type RotateOptions, type RotateResult } from '../../node/key-rotation.js'
import { intFlag, parseFlags } from '../args.js'
import { EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { explainOpenError } from '../data-dir.js'
import { write, type CliIo } from '../io.js'

const ROTATE_OPTIONS = {
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const RECOVER_OPTIONS = {
  data: { type: 'string' },
  'new-key': { type: 'boolean' },
  'last-seq': { type: 'string' },
  predecessor: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** `sledlog rotate-key`. */
export const rotateKeyCommand: Command = {
  name: 'rotate-key',
  help: `Usage: sledlog rotate-key --data DIR

Moves a stopped node to a new key (routine rotation). Creates the new key, whose first entry is
a succession record naming the old sled and the last of its seqs this node holds, endorsed
(signed) by the old key, so every replica retires the old key after that seq. The old key is
kept as DIR/retired-<sled>.key (mode 0600; it can still sign a self revocation with
sledlog revoke-key). The next start appends under the new key. Prints the new sled id on stdout.

Peers whose --allow lists the old sled admit the new one by the succession it presents; list it
explicitly when convenient. A rotation interrupted by a crash is finished by running the same
command again (the node refuses to start until then).

Options:
  --data DIR   data directory of the stopped node (default: $SLEDLOG_DATA)

Exit codes: 0 ok; 1 the rotation failed (the node runs, the store lost some of its own entries:
use sledlog recover --new-key); 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, ROTATE_OPTIONS)
    if (v.help === true) return help(io, rotateKeyCommand)
    const dir = dataDir(v.data, io, 'rotate-key')
    return report(io, await rotate(dir, { reason: 'rotation' }))
  },
}

/** `sledlog recover --new-key`. */
export const recoverCommand: Command = {
  name: 'recover',
  help: `Usage: sledlog recover --new-key --data DIR [--last-seq N] [--predecessor SLED]

After a lost disk (or when this node's sled is forked, SLED_FORKED), moves the stopped node to
a new key instead of signing its old seqs again. The new key's first entry is a succession
record with reason "recovery" naming the old sled and the last of its seqs this node vouches
for: by default the last one it holds (-1 when it holds none). Give --last-seq with the head
your peers hold of the old sled (sledlog status --url PEER lists heads) when that is higher:
every replica flags the old sled's entries after it as retired. The record is endorsed by the
old key when DIR still has it (DIR/sled.key); then the old key is kept as
DIR/retired-<sled>.key. Without the old key the succession is unendorsed: it retires nothing
and admits the new sled nowhere by itself; give --predecessor with the lost key's sled id.
Prints the new sled id on stdout. An interrupted run is finished by running it again.

Options:
  --new-key            required: recovery moves to a new key
  --data DIR           data directory of the stopped node (default: $SLEDLOG_DATA)
  --last-seq N         the old sled's last seq to vouch for (--last-seq=-1: none)
  --predecessor SLED   the old sled id, when DIR has no key file

Exit codes: 0 ok; 1 the recovery failed (e.g. the node runs); 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, RECOVER_OPTIONS)
    if (v.help === true) return help(io, recoverCommand)
    if (v['new-key'] !== true)
      throw new UsageError('recover needs --new-key: it moves the node to a new key (the only recovery it does)')
    const dir = dataDir(v.data, io, 'recover')
    const lastSeq = v['last-seq'] === '-1' ? -1 : intFlag(v['last-seq'], 'last-seq')
    const predecessor = v.predecessor
    if (predecessor !== undefined && !isSledId(predecessor))
      throw new UsageError(
        `--predecessor ${JSON.stringify(predecessor)} is not a sled id (64 lowercase hex characters)`,
      )
    return report(
      io,
      await rotate(dir, {
        reason: 'recovery',
        ...(lastSeq === undefined ? {} : { lastSeq }),
        ...(predecessor === undefined ? {} : { predecessor: predecessor as SledId }),
      }),
    )
  },
}

function dataDir(flag: string | undefined, io: CliIo, command: string): string {
  const dir = resolveDataDir(flag, io.env)
  if (dir === undefined) throw new UsageError(`${command} needs --data DIR (or SLEDLOG_DATA)`)
  return dir
}

async function rotate(dir: string, opts: RotateOptions): Promise<RotateResult> {
  try {
    return await rotateKey(dir, opts)
  } catch (err) {
    throw explainOpenError(dir, err, {
      role: 'write',
      advice: 'stop the node first: a key changes only while its node is stopped',
    })
  }
}

async function report(io: CliIo, r: RotateResult): Promise<number> {
  const vouched = r.lastSeq < 0 ? 'none of its seqs' : `its seqs 0..${r.lastSeq}`
  const endorsed = r.endorsed
    ? `endorsed by the old key: every replica flags ${r.predecessor.slice(0, 12)}…'s entries ` +
      `after seq ${r.lastSeq} retired`
    : 'NOT endorsed (the old key is lost): it retires nothing and admits the new sled nowhere by itself'
  const kept = r.retiredKeyFile === null ? '' : `; old key kept in ${r.retiredKeyFile}`
  await write(
    io.stderr,
    `sledlog: ${r.resumed ? 'finished the interrupted' : 'done:'} ${r.reason} ${r.predecessor} -> ${r.successor}, ` +
      `vouching for ${vouched}; ${endorsed}${kept}\n`,
  )
  await write(io.stdout, `${r.successor}\n`)
  return EXIT.OK
}

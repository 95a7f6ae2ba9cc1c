/**
 * `sledlog revoke-key`: signs a revocation (docs/PROTOCOL.md §3.6) with the target's own key or
 * an admin key, here, and appends it through a running node (POST /v1/revocations, admin scope)
 * or to a stopped node's data directory. The node never sees the revoking key.
 */
import { existsSync } from 'node:fs'
import type { EntryBody } from '../../core/entry.js'
import { isSledId, type SledId } from '../../core/ids.js'
import { signRevocation, type KeyPair } from '../../core/signing.js'
import { keyPath, loadIdentity, loadKeyFile, retiredKeyPath } from '../../store/identity.js'
import { intFlag, parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-options.js'
import { help, type Command } from '../command.js'
import { write } from '../io.js'
import { targetOf, type Target } from '../target.js'
import { jsonLine } from '../visible.js'

const OPTIONS = {
  url: { type: 'string' },
  data: { type: 'string' },
  sled: { type: 'string' },
  'from-seq': { type: 'string' },
  'key-file': { type: 'string' },
  'admin-key-file': { type: 'string' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** `sledlog revoke-key`. */
export const revokeKey: Command = {
  name: 'revoke-key',
  help: `Usage: sledlog revoke-key (--url URL | --data DIR) --sled SLED --from-seq N
                          [--key-file FILE | --admin-key-file FILE]

Retires sled SLED's key from seq N on: every replica that holds the revocation flags SLED's
entries from N on as retired (reads, streams and tables show "retired": true), so a stolen key
cannot append past N unnoticed. The revocation is signed here and appended through a running
node (--url, with an API token of scope admin) or to a stopped node's data directory (--data);
it replicates to every peer.

Signed by the key itself (authority self): --key-file FILE, a sledlog key file of SLED; with
--data it defaults to DIR/retired-SLED.key (left by rotate-key) or DIR/sled.key when SLED is
the node's own key. Or by an admin key (authority admin): --admin-key-file FILE, a sledlog key
file (make one with sledlog keygen --data ADMIN_DIR). An admin revocation retires SLED only on
nodes started with --admin-key <its public key>: give every node of the cluster the same list.

Options:
  --sled SLED              the sled whose key is retired
  --from-seq N             its first retired seq
  --key-file FILE          SLED's own key file (self revocation)
  --admin-key-file FILE    an admin key file (admin revocation)

${CLIENT_HELP}

Prints the stored revocation entry as one JSON line.

Exit codes: 0 ok; 1 the key file cannot be used or does not match, or the node refused
(HTTP_FORBIDDEN: the token lacks the admin scope); 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, revokeKey)
    if (v.sled === undefined || !isSledId(v.sled))
      throw new UsageError('revoke-key needs --sled SLED (a sled id, 64 lowercase hex characters)')
    const target: SledId = v.sled
    const fromSeq = intFlag(v['from-seq'], 'from-seq')
    if (fromSeq === undefined) throw new UsageError('revoke-key needs --from-seq N (the first retired seq)')
    if (v['key-file'] !== undefined && v['admin-key-file'] !== undefined)
      throw new UsageError('give --key-file (self) or --admin-key-file (admin), not both')
    const dest = await targetOf(v, 'revoke-key', io)
    try {
      const admin = v['admin-key-file'] !== undefined
      const signer = admin
        ? await keyFrom(v['admin-key-file'] as string)
        : await selfKey(target, v['key-file'], dest.kind === 'data' ? dest.dir : undefined)
      const authority = admin ? 'admin' : 'self'
      const signature = signRevocation(signer, { target, fromSeq, authority })
      const body = admin
        ? { target, fromSeq, authority, admin: signer.sled, signature }
        : { target, fromSeq, authority, signature }
      await write(io.stdout, `${jsonLine(await append(dest, body))}\n`)
      return EXIT.OK
    } finally {
      if (dest.kind === 'url') dest.client.close()
    }
  },
}

async function keyFrom(path: string): Promise<KeyPair> {
  const loaded = await loadKeyFile(path)
  if (loaded === undefined) throw new CliError(`no key file ${path}`)
  return loaded.keys
}

/** The target's own key: --key-file, else the data directory's retired or current key of it. */
async function selfKey(target: SledId, file: string | undefined, dir: string | undefined): Promise<KeyPair> {
  let keys: KeyPair | undefined
  if (file !== undefined) keys = await keyFrom(file)
  else if (dir !== undefined && existsSync(retiredKeyPath(dir, target)))
    keys = await keyFrom(retiredKeyPath(dir, target))
  else if (dir !== undefined) {
    const own = await loadIdentity(dir)
    if (own?.sled === target) keys = own
  }
  if (keys === undefined) {
    throw new UsageError(
      `a self revocation needs ${target.slice(0, 12)}…'s own key: give --key-file FILE` +
        (dir === undefined ? '' : ` (neither ${retiredKeyPath(dir, target)} nor ${keyPath(dir)} holds it)`) +
        ', or sign as an admin with --admin-key-file FILE',
    )
  }
  if (keys.sled !== target) throw new CliError(`the key file holds ${keys.sled.slice(0, 12)}…, not ${target}`)
  return keys
}

async function append(dest: Target, body: Record<string, unknown>): Promise<unknown> {
  if (dest.kind === 'url') return dest.client.post('/v1/revocations', body)
  const log = await (await import('../data-dir.js')).openDataDir(dest.dir, { create: true, sync: true })
  try {
    const [entry] = await log.appendBodies([{ kind: 'revocation', ...body } as EntryBody])
    return entry
  } finally {
    await log.close()
  }
}

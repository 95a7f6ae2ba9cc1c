/**
 * A node's Ed25519 identity on disk: `<dir>/sled.key`, mode 0600 (docs/PROTOCOL.md §2.5), and
 * the files of a key rotation (§7.1): `sled.key.next` while one is under way, and the retired
 * keys it leaves, `retired-<sled>.key`.
 */
import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { keyPairFromSeed, type KeyPair } from '../core/signing.js'
import { sledlogError } from '../errors.js'
import { fileMode, GROUP_OTHER_ANY, looseMode } from './file-mode.js'

/** File name of the key inside a data directory. */
export const KEY_FILE = 'sled.key'

/** File name of the successor key while a rotation is under way (its journal). */
export const PENDING_KEY_FILE = 'sled.key.next'

interface KeyFile {
  readonly kind: 'sledlog-key'
  readonly v: 1
  readonly seed: string
  readonly sled: string
}

/** Path of the key file of a data directory. */
export function keyPath(dir: string): string {
  return join(dir, KEY_FILE)
}

/** Path of the successor key of a rotation under way. */
export function pendingKeyPath(dir: string): string {
  return join(dir, PENDING_KEY_FILE)
}

/** Path where a rotation keeps the key it retired (mode 0600, for a later self revocation). */
export function retiredKeyPath(dir: string, sled: string): string {
  return join(dir, `retired-${sled}.key`)
}

/**
 * Loads the key of a data directory. Throws KEY_FILE_PERMISSIONS when group or others may read
 * it (a secret key must stay private, as ssh insists) and KEY_FILE_CORRUPT when it cannot be
 * parsed or its public key does not match the recorded sled id. Returns undefined if absent.
 */
export async function loadIdentity(dir: string): Promise<KeyPair | undefined> {
  return (await loadKeyFile(keyPath(dir)))?.keys
}

/**
 * Loads a key file at any path (a data directory's, a retired or an admin key), with the checks of
 * {@link loadIdentity}; also returns the file's other JSON fields (a rotation's journal). Returns
 * undefined if absent.
 */
export async function loadKeyFile(
  path: string,
): Promise<{ keys: KeyPair; extra: Readonly<Record<string, unknown>> } | undefined> {
  const mode = await fileMode(path)
  if (mode === undefined) return undefined
  const loose = looseMode(mode, GROUP_OTHER_ANY)
  if (loose !== undefined) {
    throw sledlogError(
      'KEY_FILE_PERMISSIONS',
      `${path} has mode ${loose}; it must not be readable by group or others (chmod 600 ${path})`,
      { path },
    )
  }
  const text = await readFile(path, 'utf8')
  let parsed: Partial<KeyFile>
  try {
    parsed = JSON.parse(text) as Partial<KeyFile>
  } catch {
    throw sledlogError('KEY_FILE_CORRUPT', `${path} is not JSON`, { path })
  }
  if (
    parsed.kind !== 'sledlog-key' ||
    parsed.v !== 1 ||
    typeof parsed.seed !== 'string' ||
    !/^[0-9a-f]{64}$/.test(parsed.seed)
  ) {
    throw sledlogError('KEY_FILE_CORRUPT', `${path} is not a sledlog v1 key file`, { path })
  }
  const keys = keyPairFromSeed(Buffer.from(parsed.seed, 'hex'))
  if (parsed.sled !== keys.sled) {
    throw sledlogError('KEY_FILE_CORRUPT', `${path}: its seed does not give the sled id it records`, { path })
  }
  const { kind: _k, v: _v, seed: _s, sled: _l, ...extra } = parsed as Record<string, unknown>
  return { keys, extra }
}

/**
 * Writes a new key file for `keys`, failing if one exists. The file is written to a temporary
 * name, synced, then hard-linked into place, so a crash never leaves a half-written key.
 */
export async function saveIdentity(dir: string, keys: KeyPair): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await saveKeyFile(keyPath(dir), keys)
}

/**
 * Writes a key file at `path` (mode 0600) the way {@link saveIdentity} does, failing with EEXIST
 * if one exists; `extra` fields follow the four of the format (§2.5: loaders ignore them).
 */
export async function saveKeyFile(
  path: string,
  keys: KeyPair,
  extra: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const body: KeyFile = { kind: 'sledlog-key', v: 1, seed: Buffer.from(keys.seed).toString('hex'), sled: keys.sled }
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600)
  try {
    await fh.writeFile(JSON.stringify({ ...body, ...extra }) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await link(tmp, path)
  } finally {
    await unlink(tmp)
  }
  await syncDir(dirname(path))
}

/** Fsyncs a directory, so a link, rename or removal in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

/**
 * Makes the pending successor key the data directory's key: one atomic rename over `sled.key`,
 * then the directory is fsynced. The last step of a rotation (§7.1).
 */
export async function promotePendingKey(dir: string): Promise<void> {
  await rename(pendingKeyPath(dir), keyPath(dir))
  await syncDir(dir)
}

/**
 * Throws KEY_ROTATION_PENDING when a key rotation of `dir` was interrupted (`sled.key.next`
 * exists): the key in `sled.key` may already be retired by the successor's succession record,
 * so nothing may run under it until the rotation is finished.
 */
export async function assertNoPendingRotation(dir: string): Promise<void> {
  if ((await fileMode(pendingKeyPath(dir))) === undefined) return
  throw sledlogError(
    'KEY_ROTATION_PENDING',
    `a key rotation of ${dir} was interrupted (${pendingKeyPath(dir)} exists): run the same ` +
      `sledlog rotate-key (or recover --new-key) --data ${dir} again to finish it`,
    { path: pendingKeyPath(dir) },
  )
}

/**
 * Loads the key of a data directory, creating one if there is none: from `seed` (32 bytes) when
 * given (reproducible test clusters), otherwise fresh random bytes.
 */
export async function loadOrCreateIdentity(dir: string, seed?: Uint8Array): Promise<KeyPair> {
  const existing = await loadIdentity(dir)
  if (existing !== undefined) return existing
  const keys = keyPairFromSeed(seed ?? randomBytes(32))
  try {
    await saveIdentity(dir, keys)
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return (await loadIdentity(dir)) as KeyPair
    throw err
  }
  return keys
}

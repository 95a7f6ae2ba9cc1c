/**
 * API tokens: the token string, its scopes, and the tokens file the node reads and
 * `sledlog token` writes (docs/SECURITY.md "API tokens").
 *
 * A token is `sl_<id>_<secret>`: `id` (12 hex) names it for lookup and revocation and is not
 * secret; `secret` is 32 random bytes (base64url). The file keeps only SHA-256 of the secret, so
 * reading the file does not give anyone a token, and a presented secret is compared in constant
 * time against the hash of the token its id names.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { sledlogError } from '../errors.js'
import { fileOwnership, foreignOwner, GROUP_OTHER_WRITE, looseMode } from '../store/file-mode.js'

/** What a token may do. `admin` implies every other scope. */
export const SCOPES = ['read', 'append', 'consume', 'admin'] as const

/** A scope. */
export type Scope = (typeof SCOPES)[number]

/** File name of the tokens file inside a data directory (the default location). */
export const TOKENS_FILE = 'api-tokens.json'

/** One token as stored: never the secret, only its hash. */
export interface TokenRecord {
  /** 12 lowercase hex; the part of the token string after `sl_`. */
  readonly id: string
  /** The operator's label (who or what uses it). */
  readonly name: string
  readonly scopes: readonly Scope[]
  /** SHA-256 of the secret, lowercase hex. */
  readonly hash: string
  /** When it was created, ms since the epoch. */
  readonly created: number
}

interface TokensFile {
  readonly kind: 'sledlog-api-tokens'
  readonly v: 1
  readonly tokens: readonly TokenRecord[]
}

const ID_RE = /^[0-9a-f]{12}$/
const TOKEN_RE = /^sl_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/
const NAME_RE = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/

/** Path of the tokens file of a data directory. */
export function tokensPath(dataDir: string): string {
  return join(dataDir, TOKENS_FILE)
}

/** True when `scopes` grant `want` (admin grants everything). */
export function hasScope(scopes: readonly Scope[], want: Scope): boolean {
  return scopes.includes(want) || scopes.includes('admin')
}

/** Parses `read,append` (comma-separated scopes); throws CONFIG_INVALID naming the bad one. */
export function parseScopes(text: string): Scope[] {
  const out = new Set<Scope>()
  for (const part of text.split(',')) {
    const s = part.trim()
    if (!(SCOPES as readonly string[]).includes(s))
      throw sledlogError('CONFIG_INVALID', `unknown scope ${JSON.stringify(s)} (scopes: ${SCOPES.join(', ')})`)
    out.add(s as Scope)
  }
  return [...out]
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** A new token: the record to store and the token string to hand out (once). */
export function newToken(
  name: string,
  scopes: readonly Scope[],
  now = Date.now(),
): { record: TokenRecord; token: string } {
  if (!NAME_RE.test(name))
    throw sledlogError(
      'CONFIG_INVALID',
      'a token name is 1..64 printable ASCII characters, not starting or ending in a space',
    )
  if (scopes.length === 0) throw sledlogError('CONFIG_INVALID', 'a token needs at least one scope')
  const id = randomBytes(6).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return {
    record: { id, name, scopes: [...scopes], hash: sha256Hex(secret), created: now },
    token: `sl_${id}_${secret}`,
  }
}

/** Splits a presented token string; null when it is not of the token form. */
export function parseToken(text: string): { id: string; secret: string } | null {
  const m = TOKEN_RE.exec(text)
  return m === null ? null : { id: m[1] as string, secret: m[2] as string }
}

/**
 * The record a presented token string proves, or null. The secret's hash is compared in
 * constant time; an unknown id costs the same hash and comparison, so timing tells nothing.
 */
export function verifyToken(records: ReadonlyMap<string, TokenRecord>, text: string): TokenRecord | null {
  const parsed = parseToken(text)
  if (parsed === null) return null
  const record = records.get(parsed.id)
  const got = Buffer.from(sha256Hex(parsed.secret), 'hex')
  const want = Buffer.from(record?.hash ?? '0'.repeat(64), 'hex')
  return timingSafeEqual(got, want) && record !== undefined ? record : null
}

/** Parses the text of a tokens file; throws CONFIG_INVALID naming the file and the problem. */
export function parseTokensFile(text: string, path: string): TokenRecord[] {
  const bad = (why: string): Error => sledlogError('CONFIG_INVALID', `${path}: ${why}`, { path })
  let parsed: Partial<TokensFile>
  try {
    parsed = JSON.parse(text) as Partial<TokensFile>
  } catch {
    throw bad('not JSON')
  }
  if (parsed?.kind !== 'sledlog-api-tokens' || parsed.v !== 1 || !Array.isArray(parsed.tokens))
    throw bad('not a sledlog v1 API tokens file')
  const seen = new Set<string>()
  return parsed.tokens.map((t: Partial<TokenRecord>, i) => {
    const where = `tokens[${i}]`
    if (typeof t !== 'object' || t === null) throw bad(`${where} is not an object`)
    if (typeof t.id !== 'string' || !ID_RE.test(t.id)) throw bad(`${where}.id is not 12 hex digits`)
    if (seen.has(t.id)) throw bad(`${where}.id ${t.id} appears twice`)
    seen.add(t.id)
    if (typeof t.name !== 'string' || !NAME_RE.test(t.name)) throw bad(`${where}.name is not a token name`)
    if (typeof t.hash !== 'string' || !/^[0-9a-f]{64}$/.test(t.hash)) throw bad(`${where}.hash is not SHA-256 hex`)
    if (typeof t.created !== 'number' || !Number.isSafeInteger(t.created)) throw bad(`${where}.created is not ms`)
    if (
      !Array.isArray(t.scopes) ||
      t.scopes.length === 0 ||
      !t.scopes.every((s) => (SCOPES as readonly string[]).includes(s))
    )
      throw bad(`${where}.scopes must be a non-empty list of ${SCOPES.join(', ')}`)
    return { id: t.id, name: t.name, scopes: [...t.scopes], hash: t.hash, created: t.created }
  })
}

/**
 * Reads a tokens file; undefined when it does not exist. A file that others may write is
 * refused (CONFIG_INVALID): whoever can write it can grant themselves a token. So is a file
 * owned by another user than this process's or root (its owner may write it whatever its mode;
 * e.g. the path was replaced by a link to a file of theirs).
 */
export async function readTokensFile(path: string): Promise<TokenRecord[] | undefined> {
  const file = await fileOwnership(path)
  if (file === undefined) return undefined
  const foreign = foreignOwner(file.uid)
  if (foreign !== undefined) {
    throw sledlogError(
      'CONFIG_INVALID',
      `${path} is owned by uid ${foreign}, not by this user (uid ${process.getuid?.()}) or root: its owner ` +
        `could grant themselves API tokens (chown it, or recreate it with sledlog token)`,
      { path },
    )
  }
  const loose = looseMode(file.mode, GROUP_OTHER_WRITE)
  if (loose !== undefined) {
    throw sledlogError(
      'CONFIG_INVALID',
      `${path} has mode ${loose}: group or others may write it and so grant ` +
        `themselves API tokens (chmod 600 ${path})`,
      { path },
    )
  }
  return parseTokensFile(await readFile(path, 'utf8'), path)
}

/**
 * Replaces the tokens file atomically (mode 0600): written to a temporary file in the same
 * directory, fsynced, renamed over the old one. A node watching the file never reads half of it.
 */
export async function writeTokensFile(path: string, records: readonly TokenRecord[]): Promise<void> {
  const body: TokensFile = { kind: 'sledlog-api-tokens', v: 1, tokens: records }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600)
  try {
    await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

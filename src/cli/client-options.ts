/**
 * The options every command that talks to a running node shares: where it is (`--url`), the API
 * token it sends, and the CA it trusts for HTTPS. Tokens are secrets: no message ever prints one,
 * and giving one on the command line (where every local user sees it in the process list) is
 * warned about.
 */
import { readFile, stat } from 'node:fs/promises'
import { pemCertificates } from '../config/files.js'
import { isLoopbackHost } from '../config/warnings.js'
import { GROUP_OTHER_ANY, looseMode } from '../store/file-mode.js'
import { urlFlag } from './args.js'
import { UsageError } from './cli-error.js'
import { NodeClient } from './http-client.js'
import { type CliIo, notice } from './io.js'

/** The flags of {@link connect}, to spread into a command's option table. */
export const CLIENT_FLAGS = {
  'api-token-file': { type: 'string' },
  'api-token': { type: 'string' },
  ca: { type: 'string' },
} as const

/** Environment variables of {@link connect}. */
export const CLIENT_ENV = { token: 'SLEDLOG_API_TOKEN', ca: 'SLEDLOG_CA' } as const

/** The help lines of {@link CLIENT_FLAGS}, for a command's --help. */
export const CLIENT_HELP = `Connecting to a node (with --url):
  --api-token-file FILE  send the API token in FILE (a node with API tokens requires one);
                         or set ${CLIENT_ENV.token} to the token itself
  --api-token TOKEN      the token itself: other local users see it in the process list,
                         prefer the file or the variable
  --ca FILE              trust the CA certificates in FILE (PEM) for an https:// node whose
                         certificate is self-signed or from a private CA     [${CLIENT_ENV.ca}]`

/** Parsed {@link CLIENT_FLAGS}. */
export interface ClientFlagValues {
  readonly 'api-token-file'?: string | undefined
  readonly 'api-token'?: string | undefined
  readonly ca?: string | undefined
}

/** True when any of {@link CLIENT_FLAGS} was given (they make no sense with --data). */
export function hasClientFlags(v: ClientFlagValues): boolean {
  return v['api-token-file'] !== undefined || v['api-token'] !== undefined || v.ca !== undefined
}

/**
 * A client of the node at `url` with the token and CA the flags and environment give. Usage
 * errors (exit 2) for a token file or CA file that cannot be used; a warning on stderr for a
 * token on the command line or one about to cross plain http to another machine.
 */
export async function connect(url: string, v: ClientFlagValues, io: CliIo, command: string): Promise<NodeClient> {
  const base = urlFlag(url)
  const https = base.startsWith('https:')
  const say = notice(io, command)
  const warn = (text: string): void => say(`warning: ${text}`)
  const token = await tokenOf(v, io.env, warn)
  if (v.ca !== undefined && !https) throw new UsageError('--ca only applies to https:// URLs')
  const caFile = v.ca ?? (https ? nonEmpty(io.env[CLIENT_ENV.ca]) : undefined)
  const ca = caFile === undefined ? undefined : await caOf(caFile, v.ca === undefined ? CLIENT_ENV.ca : '--ca')
  if (token !== undefined && !https && !isLoopbackHost(new URL(base).hostname)) {
    warn('the API token goes over plain http:// to another machine, readable on the way; use https://')
  }
  return new NodeClient(base, { ...(token === undefined ? {} : { token }), ...(ca === undefined ? {} : { ca }) })
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s)

/** The token from the file, the flag or the environment, checked; never echoed. */
async function tokenOf(
  v: ClientFlagValues,
  env: CliIo['env'],
  warn: (text: string) => void,
): Promise<string | undefined> {
  const file = v['api-token-file']
  if (file !== undefined && v['api-token'] !== undefined)
    throw new UsageError('give the API token once: --api-token-file or --api-token, not both')
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new UsageError(`--api-token-file: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code})`)
    }
    const loose = looseMode((await stat(file)).mode, GROUP_OTHER_ANY)
    if (loose !== undefined) warn(`${file} can be read by other users (mode ${loose}); chmod 600 ${file}`)
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '')
    if (lines.length === 0) throw new UsageError(`--api-token-file: ${file} is empty`)
    if (lines.length > 1)
      throw new UsageError(`--api-token-file: ${file} holds more than one line; put one token in it`)
    return checkToken((lines[0] as string).trim(), `--api-token-file ${file}`)
  }
  if (v['api-token'] !== undefined) {
    warn(
      `--api-token is visible to other local users in the process list; ` +
        `prefer --api-token-file FILE or ${CLIENT_ENV.token}`,
    )
    return checkToken(v['api-token'], '--api-token')
  }
  const fromEnv = nonEmpty(env[CLIENT_ENV.token])
  return fromEnv === undefined ? undefined : checkToken(fromEnv.trim(), CLIENT_ENV.token)
}

/** A token must fit in an HTTP header; the message says what is wrong, never what the token is. */
function checkToken(token: string, label: string): string {
  if (token === '') throw new UsageError(`${label}: the API token is empty`)
  // Visible ASCII only: a header value with a control character or non-ASCII is refused or mangled.
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new UsageError(`${label}: the API token holds spaces, control or non-ASCII characters`)
  return token
}

/** The PEM CA bundle in `file`, checked to hold at least one certificate. */
async function caOf(file: string, label: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new UsageError(`${label}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code})`)
  }
  try {
    if (pemCertificates(pem).length === 0)
      throw new UsageError(`${label}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(`${label}: ${file} holds a certificate that does not parse (${(err as Error).message})`)
  }
  return pem
}

/**
 * `sledlog token create|list|revoke`: manages a node's API tokens file (docs/SECURITY.md "API
 * tokens"). A running node rereads the file when it changes, so a new or revoked token takes
 * effect without a restart.
 */
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import {
  newToken,
  parseScopes,
  readTokensFile,
  SCOPES,
  tokensPath,
  writeTokensFile,
  type TokenRecord,
} from '../../auth/tokens.js'
import { resolveDataDir } from '../../config/resolve.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { write, type CliIo } from '../io.js'

const OPTIONS = {
  data: { type: 'string' },
  file: { type: 'string' },
  name: { type: 'string' },
  scope: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

type Values = { data?: string; file?: string; name?: string; scope?: string; json?: boolean; help?: boolean }

/** The tokens file: `--file`, else `<data>/api-tokens.json`. */
function fileOf(values: Values, io: CliIo): string {
  if (values.file !== undefined) return values.file
  const dir = resolveDataDir(values.data, io.env)
  if (dir === undefined) throw new UsageError('token needs --data DIR (or SLEDLOG_DATA) or --file FILE')
  return tokensPath(dir)
}

async function create(values: Values, io: CliIo): Promise<number> {
  if (values.name === undefined) throw new UsageError('token create needs --name NAME')
  if (values.scope === undefined)
    throw new UsageError(`token create needs --scope (comma-separated: ${SCOPES.join(',')})`)
  let scopes: ReturnType<typeof parseScopes>
  let made: ReturnType<typeof newToken>
  try {
    scopes = parseScopes(values.scope)
    made = newToken(values.name, scopes)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const path = fileOf(values, io)
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const records = (await readTokensFile(path)) ?? []
  await writeTokensFile(path, [...records, made.record])
  await write(io.stdout, `${made.token}\n`)
  await write(
    io.stderr,
    `created token ${made.record.id} (${made.record.name}; scopes ${scopes.join(',')}) in ${path}\n` +
      'The token is shown only now: store it (send it as Authorization: Bearer <token>).\n',
  )
  return EXIT.OK
}

function row(r: TokenRecord): string {
  return `${r.id}  ${r.scopes.join(',').padEnd(24)}  ${new Date(r.created).toISOString()}  ${r.name}`
}

async function list(values: Values, io: CliIo): Promise<number> {
  const path = fileOf(values, io)
  const records = (await readTokensFile(path)) ?? []
  if (values.json === true) {
    const out = records.map(({ id, name, scopes, created }) => ({ id, name, scopes, created }))
    await write(io.stdout, `${JSON.stringify(out)}\n`)
    return EXIT.OK
  }
  if (records.length === 0) {
    await write(io.stderr, `no tokens in ${path}: the API of a node using it is open (loopback only)\n`)
    return EXIT.OK
  }
  await write(io.stdout, `${'ID'.padEnd(12)}  ${'SCOPES'.padEnd(24)}  ${'CREATED'.padEnd(24)}  NAME\n`)
  for (const r of records) await write(io.stdout, `${row(r)}\n`)
  return EXIT.OK
}

async function revoke(values: Values, id: string | undefined, io: CliIo): Promise<number> {
  if (id === undefined) throw new UsageError('token revoke needs the token id (sledlog token list shows it)')
  const path = fileOf(values, io)
  const records = (await readTokensFile(path)) ?? []
  const kept = records.filter((r) => r.id !== id)
  if (kept.length === records.length) throw new CliError(`no token ${JSON.stringify(id)} in ${path}`)
  await writeTokensFile(path, kept)
  await write(io.stderr, `revoked token ${id}; running nodes using ${path} refuse it within a second\n`)
  if (kept.length === 0)
    await write(io.stderr, 'no tokens are left: every API request but /healthz is refused until one is created\n')
  return EXIT.OK
}

/** `sledlog token`. */
export const token: Command = {
  name: 'token',
  help: `Usage: sledlog token create --data DIR --name NAME --scope SCOPES
       sledlog token list --data DIR [--json]
       sledlog token revoke ID --data DIR

Manages the API tokens of a node (DIR/api-tokens.json, mode 0600; --file FILE for another
file, as the node's --api-tokens). With at least one token, every API request but /healthz
needs "Authorization: Bearer <token>" with the route's scope. A running node rereads the file
when it changes: a new or revoked token takes effect within a second, without a restart.

  create   prints the new token on stdout, once (only its SHA-256 is stored)
  list     id, scopes, creation time and name of each token (never a secret)
  revoke   removes the token with that id

Scopes (comma-separated): read (GET routes, /metrics, /v1/status), append (POST /v1/events,
/v1/ingest), consume (consumer create, ack, delete, consumer streams), admin (all of them).

Options:
  --data DIR      data directory (default: $SLEDLOG_DATA)
  --file FILE     tokens file instead of DIR/api-tokens.json
  --name NAME     who or what uses the token (1..64 printable characters)
  --scope SCOPES  e.g. read,append
  --json          list as JSON

Exit codes: 0 ok; 1 no such token, or the file is broken or writable by others; 2 bad usage.`,
  async run(argv, io) {
    let parsed: { values: Values; positionals: string[] }
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true })
    } catch (err) {
      throw new UsageError((err as Error).message.split(/\.\s/)[0] ?? String(err))
    }
    const { values, positionals } = parsed
    if (values.help === true) return help(io, token)
    const [action, ...rest] = positionals
    const extra = action === 'revoke' ? rest.slice(1) : rest
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`)
    if (action === 'create') return create(values, io)
    if (action === 'list') return list(values, io)
    if (action === 'revoke') return revoke(values, rest[0], io)
    throw new UsageError('token needs an action: create, list or revoke')
  },
}

/**
 * Resolves a node's settings from flags, environment and config file, in that order of
 * precedence, over the defaults.
 *
 * Pure: it gets the three sources as values and returns either the settings or the list of every
 * problem found, so an operator fixes a config in one round instead of one error per start.
 * Messages never show a secret setting's value, nor the credentials of a URL.
 */
import { dirname, isAbsolute, join } from 'node:path'
import { isSledId, publicKeyOf, type SledId } from '../core/ids.js'
import { isWeakPublicKey } from '../core/signing.js'
import { sledlogError } from '../errors.js'
import { MAX_ACK_TIMEOUT_MS } from '../http/acks.js'
import { configuredPeerCount } from '../sync/peer-holds.js'
import { RECOVERY_MODES, type RecoveryMode } from '../sync/recovery.js'
import { hasUrlCredentials, redactUrls } from './redact.js'
import {
  DEFAULTS,
  LOG_LEVELS,
  SETTING_SOURCES,
  type LogLevel,
  type NodeSettings,
  type Origin,
  type SettingName,
} from './settings.js'

/** A parsed flag value: strings, booleans or lists (repeatable flags); absent flags are undefined. */
export type FlagValue = string | boolean | readonly string[] | undefined

/** The config file as read: its parsed JSON, or why it could not be read. */
export type ConfigFile =
  | { readonly path: string; readonly value: unknown }
  | { readonly path: string; readonly error: string }

/** Everything the resolver looks at. */
export interface ConfigSources {
  /** Parsed flags, keyed by flag name without `--`. */
  readonly flags: Readonly<Record<string, FlagValue>>
  readonly env: Readonly<Record<string, string | undefined>>
  readonly file?: ConfigFile
}

/** A file a setting names, for the I/O half to check (see load.ts). */
export interface NamedFile {
  readonly setting: SettingName
  /** How the operator wrote it: `--tls-cert`, `SLEDLOG_TLS_CERT` or `conf.json: tlsCert`. */
  readonly label: string
  /** The path, resolved against the config file when it came from there. */
  readonly path: string
}

/** The outcome: settings and where each came from, or every problem found. */
export type ResolveResult = (
  | { readonly ok: true; readonly settings: NodeSettings; readonly origins: Readonly<Record<SettingName, Origin>> }
  | { readonly ok: false; readonly problems: readonly string[] }
) & {
  /** The files named by valid settings (except the data directory), found problems or not. */
  readonly files: readonly NamedFile[]
}

/** One candidate value of a setting, labelled for messages. */
interface Raw {
  readonly name: SettingName
  readonly value: unknown
  readonly origin: Exclude<Origin, 'default'>
  /** How the operator wrote it: `--port`, `SLEDLOG_PORT` or `conf.json: port`. */
  readonly label: string
}

const json = (v: unknown): string => JSON.stringify(v) ?? String(v)

/** A value as messages show it: secrets never, URL credentials never. */
const show = (raw: Pick<Raw, 'name'>, v: unknown): string =>
  SETTING_SOURCES[raw.name].secret === true ? '(value hidden: a secret)' : redactUrls(json(v))

/**
 * Resolves node settings. Precedence per setting: flag > environment > config file > default.
 * Lists are taken whole from the first source that has them, never merged, so an override
 * really replaces. An empty environment variable counts as unset (compose files often pass
 * `VAR: ${VAR:-}`).
 */
export function resolveNodeSettings(sources: ConfigSources): ResolveResult {
  const problems: string[] = []
  const fail = (message: string): undefined => {
    problems.push(message)
    return undefined
  }
  const fileValues = readFileValues(sources.file, problems)
  const origins: Partial<Record<SettingName, Origin>> = {}
  const files: NamedFile[] = []

  const pick = (name: SettingName): Raw | undefined => {
    const src = SETTING_SOURCES[name]
    const flag = sources.flags[src.flag]
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0))
      return { name, value: flag, origin: 'flag', label: `--${src.flag}` }
    const env = sources.env[src.env]
    if (env !== undefined && env !== '') return { name, value: env, origin: 'env', label: src.env }
    if (fileValues !== undefined && fileValues.value[src.file] !== undefined) {
      return { name, value: fileValues.value[src.file], origin: 'file', label: `${fileValues.path}: ${src.file}` }
    }
    return undefined
  }
  const take = <T>(name: SettingName, parse: (raw: Raw) => T | undefined): T | undefined => {
    const raw = pick(name)
    if (raw === undefined) return undefined
    origins[name] = raw.origin
    const before = problems.length
    const value = parse(raw)
    // A parser that reported nothing but returned undefined would silently drop a setting.
    if (value === undefined && problems.length === before)
      problems.push(`${raw.label}: invalid value ${show(raw, raw.value)}`)
    return value
  }

  const text =
    (what: string) =>
    (raw: Raw): string | undefined => {
      if (typeof raw.value !== 'string')
        return fail(`${raw.label}: ${what} must be a string, got ${show(raw, raw.value)}`)
      if (raw.value.trim() === '') return fail(`${raw.label}: ${what} must not be empty`)
      return raw.value
    }
  /** A file path; relative paths in a config file mean the same wherever the node starts. */
  const path =
    (what: string) =>
    (raw: Raw): string | undefined => {
      const p = text(what)(raw)
      if (p === undefined) return undefined
      const resolved =
        raw.origin === 'file' && fileValues !== undefined && !isAbsolute(p) ? join(dirname(fileValues.path), p) : p
      if (raw.name !== 'data') files.push({ setting: raw.name, label: raw.label, path: resolved })
      return resolved
    }
  /** A list whose items `check` normalises (or rejects); duplicates after normalisation dropped. */
  const list =
    (check: (item: string, raw: Raw) => string | undefined) =>
    (raw: Raw): string[] | undefined => {
      const items = stringList(raw, problems)
      if (items === undefined) return undefined
      const out: string[] = []
      for (const item of items) {
        const v = check(item, raw)
        if (v !== undefined && !out.includes(v)) out.push(v)
      }
      return out
    }
  const normaliseItems =
    (normalise: (text: string) => Normalised) =>
    (item: string, raw: Raw): string | undefined => {
      const n = normalise(item)
      if (n.ok) return n.value
      problems.push(`${raw.label}: ${show(raw, item)} ${n.why}`)
      return undefined
    }
  const flag = (raw: Raw): boolean | undefined => {
    const b = boolean(raw.value)
    if (b === undefined) return fail(`${raw.label}: ${show(raw, raw.value)} is not a boolean (true/false, 1/0, yes/no)`)
    return b
  }

  const data = take('data', path('data directory'))
  if (pick('data') === undefined) {
    problems.push(`data directory missing: give --data DIR, set SLEDLOG_DATA, or put "data" in the config file`)
  }

  const host = take('host', (raw) => {
    const h = text('host')(raw)
    if (h === undefined) return undefined
    if (/[\s/]/.test(h) || h.includes('://'))
      return fail(`${raw.label}: ${show(raw, h)} is not a host name or IP address`)
    return h
  })

  const port = take('port', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 0 || n > 65535)
      return fail(`${raw.label}: ${show(raw, raw.value)} is not a port (an integer 0..65535)`)
    return n
  })

  const peers = take('peers', (raw) => {
    const items = stringList(raw, problems)
    if (items === undefined) return undefined
    const seen = new Set<string>()
    for (const p of items) {
      const why = peerUrlProblem(p)
      if (why !== undefined) problems.push(`${raw.label}: ${show(raw, p)} ${why}`)
      else if (seen.has(p)) problems.push(`${raw.label}: ${show(raw, p)} is listed twice`)
      seen.add(p)
    }
    return items
  })

  const token = take('token', text('token'))

  const allow = take('allow', (raw) => {
    const items = stringList(raw, problems)
    if (items === undefined) return undefined
    for (const a of items)
      if (!isSledId(a)) problems.push(`${raw.label}: ${show(raw, a)} is not a sled id (64 lowercase hex characters)`)
    return [...new Set(items)] as SledId[]
  })

  const adminKeys = take('adminKeys', (raw) => {
    const items = stringList(raw, problems)
    if (items === undefined) return undefined
    for (const a of items) {
      const why = adminKeyProblem(a)
      if (why !== undefined) problems.push(`${raw.label}: ${show(raw, a)} ${why}`)
    }
    return [...new Set(items)] as SledId[]
  })

  const sync = take('sync', flag)

  const minAcks = take('minAcks', (raw) => {
    const n = integer(raw.value)
    if (n === undefined) return fail(`${raw.label}: ${show(raw, raw.value)} is not a number of peers (an integer >= 0)`)
    // Every write would wait for more peers than can ever hold it: refused at start, not per write.
    const configured = configuredPeerCount({ peers: peers ?? [], ...(allow ? { allow: new Set(allow) } : {}) })
    if (n > configured)
      return fail(
        `${raw.label}: ${n} is more than the ${configured} configured peers ` +
          '(allow-listed sleds, or --peer URLs without an allow-list): no write could be acknowledged',
      )
    return n
  })

  const ackTimeoutMs = take('ackTimeoutMs', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 1 || n > MAX_ACK_TIMEOUT_MS)
      return fail(`${raw.label}: ${show(raw, raw.value)} is not a duration in ms (an integer 1..${MAX_ACK_TIMEOUT_MS})`)
    return n
  })

  const recoveryTimeoutMs = take('recoveryTimeoutMs', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 0)
      return fail(`${raw.label}: ${show(raw, raw.value)} is not a duration in ms (an integer >= 0)`)
    return n
  })

  const recoveryQuorum = take('recoveryQuorum', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 1)
      return fail(`${raw.label}: ${show(raw, raw.value)} is not a number of peers (an integer >= 1)`)
    // Dialed URLs and allow-listed sleds may name the same peers: this is the most there can be.
    const most = (peers?.length ?? 0) + (allow?.length ?? 0)
    if (n > most)
      return fail(
        `${raw.label}: ${n} peers can never answer: only ${most} are configured (--peer, --allow), ` +
          'so a recovery would wait for an operator every time',
      )
    return n
  })

  const recoveryMode = take('recoveryMode', (raw) => {
    if (!RECOVERY_MODES.includes(raw.value as RecoveryMode))
      return fail(`${raw.label}: ${show(raw, raw.value)} is not a recovery mode (${RECOVERY_MODES.join(', ')})`)
    return raw.value as RecoveryMode
  })

  const ingestCapacity = take('ingestCapacity', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 1)
      return fail(`${raw.label}: ${show(raw, raw.value)} is not an ingest bus capacity (an integer >= 1)`)
    return n
  })

  const logLevel = take('logLevel', (raw) => {
    const v = typeof raw.value === 'string' ? raw.value.toLowerCase() : raw.value
    if (!LOG_LEVELS.includes(v as LogLevel))
      return fail(`${raw.label}: ${show(raw, raw.value)} is not a log level (${LOG_LEVELS.join(', ')})`)
    return v as LogLevel
  })

  const insecure = take('insecure', flag)
  const apiTokensFile = take('apiTokensFile', path('API tokens file'))
  const tlsCert = take('tlsCert', path('TLS certificate file'))
  const tlsKey = take('tlsKey', path('TLS key file'))
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    const [given, missing] = tlsCert === undefined ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey']
    const src = SETTING_SOURCES[missing as SettingName]
    problems.push(
      `${pick(given as SettingName)?.label}: TLS needs both a certificate and its key; ` +
        `give --${src.flag} FILE too (or ${src.env})`,
    )
  }
  const peerCa = take('peerCa', path('peer CA file'))

  const peerPins = take('peerPins', list(normaliseItems(normalisePin)))
  const allowedHosts = take('allowedHosts', list(normaliseItems(normaliseHost)))
  const corsOrigins = take('corsOrigins', list(normaliseItems(normaliseOrigin)))

  if (problems.length > 0 || data === undefined) return { ok: false, problems, files }
  const settings: NodeSettings = {
    data,
    host: host ?? DEFAULTS.host,
    port: port ?? DEFAULTS.port,
    peers: peers ?? DEFAULTS.peers,
    ...(token === undefined ? {} : { token }),
    // An empty list (e.g. SLEDLOG_ALLOW=",") would lock every peer out; it means "no list".
    ...(allow === undefined || allow.length === 0 ? {} : { allow }),
    ...(adminKeys === undefined || adminKeys.length === 0 ? {} : { adminKeys }),
    sync: sync ?? DEFAULTS.sync,
    minAcks: minAcks ?? DEFAULTS.minAcks,
    ...(ackTimeoutMs === undefined ? {} : { ackTimeoutMs }),
    ...(recoveryTimeoutMs === undefined ? {} : { recoveryTimeoutMs }),
    ...(recoveryQuorum === undefined ? {} : { recoveryQuorum }),
    recoveryMode: recoveryMode ?? DEFAULTS.recoveryMode,
    ...(ingestCapacity === undefined ? {} : { ingestCapacity }),
    logLevel: logLevel ?? DEFAULTS.logLevel,
    insecure: insecure ?? DEFAULTS.insecure,
    ...(apiTokensFile === undefined ? {} : { apiTokensFile }),
    ...(tlsCert === undefined || tlsKey === undefined ? {} : { tlsCert, tlsKey }),
    ...(peerCa === undefined ? {} : { peerCa }),
    ...(peerPins === undefined || peerPins.length === 0 ? {} : { peerPins }),
    ...(allowedHosts === undefined || allowedHosts.length === 0 ? {} : { allowedHosts }),
    ...(corsOrigins === undefined || corsOrigins.length === 0 ? {} : { corsOrigins }),
  }
  const allOrigins = {} as Record<SettingName, Origin>
  for (const name of Object.keys(SETTING_SOURCES) as SettingName[]) allOrigins[name] = origins[name] ?? 'default'
  return { ok: true, settings, origins: allOrigins, files }
}

/** Why `key` cannot be an admin key (PROTOCOL.md §6.5), or undefined. */
function adminKeyProblem(key: string): string | undefined {
  if (!isSledId(key)) return 'is not a public key (64 lowercase hex characters)'
  if (isWeakPublicKey(publicKeyOf(key))) return 'is a weak key anyone could sign for; it is never an admin key'
  return undefined
}

/**
 * The admin keys of SLEDLOG_ADMIN_KEYS (comma-separated), for commands that read a stopped node's
 * data directory: they decide which admin revocations retire a sled there, as on the node.
 * Throws CONFIG_INVALID naming a bad key.
 */
export function resolveAdminKeys(env: Readonly<Record<string, string | undefined>>): SledId[] {
  const name = SETTING_SOURCES.adminKeys.env
  const keys = (env[name] ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
  for (const k of keys) {
    const why = adminKeyProblem(k)
    if (why !== undefined) throw sledlogError('CONFIG_INVALID', `${name}: ${JSON.stringify(k)} ${why}`)
  }
  return [...new Set(keys)] as SledId[]
}

/**
 * The data directory for commands that only need one (keygen, id, verify…): the flag, else
 * SLEDLOG_DATA. Undefined when neither is given.
 */
export function resolveDataDir(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (flag !== undefined) return flag
  const e = env[SETTING_SOURCES.data.env]
  return e === undefined || e === '' ? undefined : e
}

/** Checks the config file's shape; returns its values, or undefined after noting problems. */
function readFileValues(
  file: ConfigFile | undefined,
  problems: string[],
): { path: string; value: Record<string, unknown> } | undefined {
  if (file === undefined) return undefined
  if ('error' in file) {
    problems.push(`${file.path}: ${file.error}`)
    return undefined
  }
  const v = file.value
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    const got = Array.isArray(v) ? 'an array' : typeof v === 'string' ? 'a string' : json(v)
    problems.push(`${file.path}: a config file must hold a JSON object, got ${got}`)
    return undefined
  }
  const known = new Set(Object.values(SETTING_SOURCES).map((s) => s.file))
  for (const key of Object.keys(v)) {
    if (!known.has(key)) problems.push(`${file.path}: unknown key ${json(key)} (known: ${[...known].join(', ')})`)
  }
  return { path: file.path, value: v as Record<string, unknown> }
}

/** A list from a repeatable flag (array), an env var (comma-separated) or a file (JSON array). */
function stringList(raw: Raw, problems: string[]): string[] | undefined {
  if (raw.origin === 'env' && typeof raw.value === 'string') {
    return raw.value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
  }
  if (Array.isArray(raw.value) && raw.value.every((s) => typeof s === 'string')) return raw.value as string[]
  problems.push(`${raw.label}: must be a list of strings, got ${show(raw, raw.value)}`)
  return undefined
}

function integer(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) {
    const n = Number(v.trim())
    return Number.isSafeInteger(n) ? n : undefined
  }
  return undefined
}

function boolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v
  if (typeof v !== 'string') return undefined
  const s = v.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(s)) return true
  if (['false', '0', 'no', 'off'].includes(s)) return false
  return undefined
}

/** Why `url` cannot be a peer URL, or undefined when it can. */
export function peerUrlProblem(url: string): string | undefined {
  // Checked first: an unparseable URL with a password in it must still be refused as such.
  if (hasUrlCredentials(url)) return 'must not carry credentials (use the token setting)'
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return 'is not a URL (expected ws://host:port)'
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return `must be a ws:// or wss:// URL, not ${u.protocol}//`
  if (u.hostname === '') return 'has no host'
  if (u.search !== '' || u.hash !== '') return 'must not carry a query or fragment (the sync path is added by the node)'
  if (u.username !== '' || u.password !== '') return 'must not carry credentials (use the token setting)'
  return undefined
}

/** A list item in its normal form, or why it cannot be one. */
export type Normalised = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly why: string }

/**
 * A certificate fingerprint as the node compares it (64 lowercase hex characters), from either
 * spelling operators copy: plain hex, or `AB:CD:…` as `openssl x509 -fingerprint -sha256` prints.
 */
export function normalisePin(text: string): Normalised {
  const t = text.trim()
  if (/^[0-9a-f]{64}$/i.test(t) || /^[0-9a-f]{2}(:[0-9a-f]{2}){31}$/i.test(t))
    return { ok: true, value: t.replaceAll(':', '').toLowerCase() }
  return {
    ok: false,
    why: 'is not a SHA-256 fingerprint (64 hex characters, or 32 colon-separated hex pairs as openssl prints them)',
  }
}

/**
 * A Host header value the API may answer: a host name or IP literal with an optional port, in
 * lowercase ASCII (a default port dropped), or why it is not one.
 */
export function normaliseHost(text: string): Normalised {
  const t = text.trim().toLowerCase()
  let u: URL
  try {
    u = new URL(`http://${t}`)
  } catch {
    return { ok: false, why: 'is not a host name or IP address (e.g. sledlog.example.com or 10.0.0.5:7400)' }
  }
  if (u.username !== '' || u.password !== '' || u.pathname !== '/' || /[/?#]/.test(t))
    return {
      ok: false,
      why: 'must be a bare host name, without scheme, path or credentials (e.g. sledlog.example.com)',
    }
  // The URL parser rewrites what it cannot keep verbatim (Unicode names into punycode).
  if (u.hostname !== t.replace(/:\d+$/, ''))
    return { ok: false, why: `must be written in ASCII, as the Host header carries it: ${u.hostname}` }
  return { ok: true, value: u.host }
}

/** A browser origin `scheme://host[:port]` (default port dropped, lowercase), or why not. */
export function normaliseOrigin(text: string): Normalised {
  const t = text.trim()
  if (t === '*' || t === 'null')
    return { ok: false, why: 'is not allowed: list each origin that may call the API (scheme://host[:port])' }
  if (hasUrlCredentials(t)) return { ok: false, why: 'must not carry credentials' }
  let u: URL
  try {
    u = new URL(t)
  } catch {
    return { ok: false, why: 'is not an origin (expected scheme://host[:port], e.g. https://app.example.com)' }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return { ok: false, why: 'must be an http:// or https:// origin' }
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '' || /[?#]/.test(t))
    return { ok: false, why: 'must be an origin only, without a path, query or fragment (scheme://host[:port])' }
  return { ok: true, value: u.origin }
}

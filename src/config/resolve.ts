/**
 * Resolves a node's settings from flags, environment and config file, in that order of
 * precedence, over the defaults.
 *
 * Pure: it gets the three sources as values and returns either the settings or the list of every
 * problem found, so an operator fixes a config in one round instead of one error per start.
 */
import { dirname, isAbsolute, join } from 'node:path'
import { isSledId, type SledId } from '../core/ids.js'
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

/** The outcome: settings and where each came from, or every problem found. */
export type ResolveResult =
  | { readonly ok: true; readonly settings: NodeSettings; readonly origins: Readonly<Record<SettingName, Origin>> }
  | { readonly ok: false; readonly problems: readonly string[] }

/** One candidate value of a setting, labelled for messages. */
interface Raw {
  readonly value: unknown
  readonly origin: Exclude<Origin, 'default'>
  /** How the operator wrote it: `--port`, `SLEDLOG_PORT` or `conf.json: port`. */
  readonly label: string
}

const show = (v: unknown): string => JSON.stringify(v) ?? String(v)

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

  const pick = (name: SettingName): Raw | undefined => {
    const src = SETTING_SOURCES[name]
    const flag = sources.flags[src.flag]
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0))
      return { value: flag, origin: 'flag', label: `--${src.flag}` }
    const env = sources.env[src.env]
    if (env !== undefined && env !== '') return { value: env, origin: 'env', label: src.env }
    if (fileValues !== undefined && fileValues.value[src.file] !== undefined) {
      return { value: fileValues.value[src.file], origin: 'file', label: `${fileValues.path}: ${src.file}` }
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
      problems.push(`${raw.label}: invalid value ${show(raw.value)}`)
    return value
  }

  const text =
    (what: string) =>
    (raw: Raw): string | undefined => {
      if (typeof raw.value !== 'string') return fail(`${raw.label}: ${what} must be a string, got ${show(raw.value)}`)
      if (raw.value.trim() === '') return fail(`${raw.label}: ${what} must not be empty`)
      return raw.value
    }

  const rawData = take('data', text('data directory'))
  const data =
    rawData !== undefined && origins.data === 'file' && fileValues !== undefined && !isAbsolute(rawData)
      ? // A path in a config file means the same wherever the node is started from.
        join(dirname(fileValues.path), rawData)
      : rawData
  if (pick('data') === undefined) {
    problems.push(`data directory missing: give --data DIR, set SLEDLOG_DATA, or put "data" in the config file`)
  }

  const host = take('host', (raw) => {
    const h = text('host')(raw)
    if (h === undefined) return undefined
    if (/[\s/]/.test(h) || h.includes('://')) return fail(`${raw.label}: ${show(h)} is not a host name or IP address`)
    return h
  })

  const port = take('port', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 0 || n > 65535)
      return fail(`${raw.label}: ${show(raw.value)} is not a port (an integer 0..65535)`)
    return n
  })

  const peers = take('peers', (raw) => {
    const list = stringList(raw, problems)
    if (list === undefined) return undefined
    const seen = new Set<string>()
    for (const p of list) {
      const why = peerUrlProblem(p)
      if (why !== undefined) problems.push(`${raw.label}: ${show(p)} ${why}`)
      else if (seen.has(p)) problems.push(`${raw.label}: ${show(p)} is listed twice`)
      seen.add(p)
    }
    return list
  })

  const token = take('token', text('token'))

  const allow = take('allow', (raw) => {
    const list = stringList(raw, problems)
    if (list === undefined) return undefined
    for (const a of list)
      if (!isSledId(a)) problems.push(`${raw.label}: ${show(a)} is not a sled id (64 lowercase hex characters)`)
    return [...new Set(list)] as SledId[]
  })

  const sync = take('sync', (raw) => {
    const b = boolean(raw.value)
    if (b === undefined) return fail(`${raw.label}: ${show(raw.value)} is not a boolean (true/false, 1/0, yes/no)`)
    return b
  })

  const recoveryTimeoutMs = take('recoveryTimeoutMs', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 0)
      return fail(`${raw.label}: ${show(raw.value)} is not a duration in ms (an integer >= 0)`)
    return n
  })

  const ingestCapacity = take('ingestCapacity', (raw) => {
    const n = integer(raw.value)
    if (n === undefined || n < 1)
      return fail(`${raw.label}: ${show(raw.value)} is not an ingest bus capacity (an integer >= 1)`)
    return n
  })

  const logLevel = take('logLevel', (raw) => {
    const v = typeof raw.value === 'string' ? raw.value.toLowerCase() : raw.value
    if (!LOG_LEVELS.includes(v as LogLevel))
      return fail(`${raw.label}: ${show(raw.value)} is not a log level (${LOG_LEVELS.join(', ')})`)
    return v as LogLevel
  })

  if (problems.length > 0 || data === undefined) return { ok: false, problems }
  const settings: NodeSettings = {
    data,
    host: host ?? DEFAULTS.host,
    port: port ?? DEFAULTS.port,
    peers: peers ?? DEFAULTS.peers,
    ...(token === undefined ? {} : { token }),
    // An empty list (e.g. SLEDLOG_ALLOW=",") would lock every peer out; it means "no list".
    ...(allow === undefined || allow.length === 0 ? {} : { allow }),
    sync: sync ?? DEFAULTS.sync,
    ...(recoveryTimeoutMs === undefined ? {} : { recoveryTimeoutMs }),
    ...(ingestCapacity === undefined ? {} : { ingestCapacity }),
    logLevel: logLevel ?? DEFAULTS.logLevel,
  }
  const allOrigins = {} as Record<SettingName, Origin>
  for (const name of Object.keys(SETTING_SOURCES) as SettingName[]) allOrigins[name] = origins[name] ?? 'default'
  return { ok: true, settings, origins: allOrigins }
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
    problems.push(`${file.path}: a config file must hold a JSON object, got ${Array.isArray(v) ? 'an array' : show(v)}`)
    return undefined
  }
  const known = new Set(Object.values(SETTING_SOURCES).map((s) => s.file))
  for (const key of Object.keys(v)) {
    if (!known.has(key)) problems.push(`${file.path}: unknown key ${show(key)} (known: ${[...known].join(', ')})`)
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
  problems.push(`${raw.label}: must be a list of strings, got ${show(raw.value)}`)
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

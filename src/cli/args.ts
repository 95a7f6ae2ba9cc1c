/**
 * Flag parsing for the commands: node's `parseArgs`, strict, with its errors turned into usage
 * errors (exit 2) that name the offending flag in one line.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { hasUrlCredentials, redactUrls } from '../config/redact.js'
import { UsageError } from './cli-error.js'

/** The option table of {@link parseFlags}. */
export type FlagOptions = NonNullable<ParseArgsConfig['options']>

/** The parsed values of a {@link parseFlags} option table. */
export type FlagValues<T extends FlagOptions> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>['values']

/** Parses `argv` against `options`; unknown flags, missing values and positionals are usage errors. */
export function parseFlags<const T extends FlagOptions>(argv: readonly string[], options: T): FlagValues<T> {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values
  } catch (err) {
    if (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      // Node's message goes on about positionals after '--'; the first sentence is what matters.
      throw new UsageError(err.message.split(/\.\s/)[0] ?? err.message)
    }
    throw err
  }
}

/** Parses a non-negative integer flag value, or throws a usage error naming the flag. */
export function intFlag(
  value: string | undefined,
  flag: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+$/.test(value) ? Number(value) : NaN
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
    const range = `${min}..${max === Number.MAX_SAFE_INTEGER ? '' : max}`
    throw new UsageError(`--${flag} ${JSON.stringify(value)} must be an integer in ${range}`)
  }
  return n
}

/**
 * Parses a base URL flag (http or https) without a trailing slash. A URL with credentials is
 * refused without echoing them: tokens go in their own flags, never in URLs that get printed.
 */
export function urlFlag(value: string, flag = 'url'): string {
  if (hasUrlCredentials(value)) {
    throw new UsageError(
      `--${flag} ${JSON.stringify(redactUrls(value))} carries credentials (user:password@); ` +
        'give an API token with --api-token-file instead',
    )
  }
  let u: URL
  try {
    u = new URL(value)
  } catch {
    throw new UsageError(`--${flag} ${JSON.stringify(value)} is not a URL (expected http://host:port)`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`--${flag} must be an http:// or https:// URL`)
  if (u.search !== '' || u.hash !== '' || /[?#]/.test(value))
    throw new UsageError(`--${flag} must be the node's base URL, without a query or fragment (http://host:port)`)
  return value.replace(/\/+$/, '')
}

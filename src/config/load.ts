/**
 * The I/O half of configuration: finds and reads the config file, runs the pure resolver, checks
 * the files the settings name, and turns every problem into one CONFIG_INVALID error.
 */
import { readFile } from 'node:fs/promises'
import { sledlogError } from '../errors.js'
import { checkNamedFiles } from './files.js'
import { resolveNodeSettings, type ConfigFile, type FlagValue } from './resolve.js'
import { CONFIG_SOURCE, type NodeSettings, type Origin, type SettingName } from './settings.js'

/** The config file named by `--config` or SLEDLOG_CONFIG, if any. */
export function configPathOf(
  flags: Readonly<Record<string, FlagValue>>,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const flag = flags[CONFIG_SOURCE.flag]
  if (typeof flag === 'string') return flag
  const e = env[CONFIG_SOURCE.env]
  return e === undefined || e === '' ? undefined : e
}

/**
 * Reads and parses a JSON config file; a failure is returned, not thrown, to be reported with the
 * rest. A parse error names the line and column only: V8's own message quotes the text around
 * the error, which may be the token.
 */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return {
      path,
      error:
        code === 'ENOENT' ? 'config file not found' : `cannot read config file (${code ?? (err as Error).message})`,
    }
  }
  try {
    return { path, value: JSON.parse(text) as unknown }
  } catch {
    return { path, error: `config file is not valid JSON: ${jsonErrorPlace(text)}` }
  }
}

/**
 * Where in `text` JSON.parse fails, as `line L, column C`. V8 gives no position for an unexpected
 * token, so it is found by bisection: a prefix of the text is "fine so far" when it parses or
 * fails only for ending early, and the first prefix that is not fine ends at the bad character.
 */
export function jsonErrorPlace(text: string): string {
  const fine = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n))
      return true
    } catch (err) {
      const m = (err as Error).message
      const at = /at position (\d+)/.exec(m)
      return /end of JSON input|Unterminated/.test(m) || (at !== null && Number(at[1]) >= n)
    }
  }
  let lo = 0 // fine(lo)
  let hi = text.length // not fine(hi), unless the text only ends early
  if (fine(hi)) return text.trim() === '' ? 'the file is empty' : 'it ends before the JSON value is complete'
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1
    if (fine(mid)) lo = mid
    else hi = mid
  }
  const lines = text.slice(0, hi - 1).split('\n')
  return `unexpected character at line ${lines.length}, column ${(lines.at(-1)?.length ?? 0) + 1}`
}

/**
 * Resolves the node settings from flags, environment and the config file. Throws CONFIG_INVALID
 * listing every problem (`details.problems`).
 */
export async function loadNodeSettings(
  flags: Readonly<Record<string, FlagValue>>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ settings: NodeSettings; origins: Readonly<Record<SettingName, Origin>> }> {
  const path = configPathOf(flags, env)
  const file = path === undefined ? undefined : await readConfigFile(path)
  const result = resolveNodeSettings({ flags, env, ...(file === undefined ? {} : { file }) })
  const problems = [...(result.ok ? [] : result.problems), ...(await checkNamedFiles(result.files))]
  if (!result.ok || problems.length > 0) {
    const n = problems.length
    const list = problems.map((p) => `  - ${p}`).join('\n')
    throw sledlogError('CONFIG_INVALID', `invalid configuration (${n} problem${n === 1 ? '' : 's'}):\n${list}`, {
      problems,
    })
  }
  return { settings: result.settings, origins: result.origins }
}

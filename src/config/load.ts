/**
 * The I/O half of configuration: finds and reads the config file, runs the pure resolver, and
 * turns its problems into one CONFIG_INVALID error.
 */
import { readFile } from 'node:fs/promises'
import { sledlogError } from '../errors.js'
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

/** Reads and parses a JSON config file; a failure is returned, not thrown, to be reported with the rest. */
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
  } catch (err) {
    return { path, error: `config file is not valid JSON (${(err as Error).message})` }
  }
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
  if (!result.ok) {
    const n = result.problems.length
    throw sledlogError(
      'CONFIG_INVALID',
      `invalid configuration (${n} problem${n === 1 ? '' : 's'}):\n${result.problems.map((p) => `  - ${p}`).join('\n')}`,
      { problems: [...result.problems] },
    )
  }
  return { settings: result.settings, origins: result.origins }
}

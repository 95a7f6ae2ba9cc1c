/**
 * API tokens for node-process tests: a tokens file written into a data directory before the node
 * starts, and the header that sends one.
 */
import { newToken, tokensPath, writeTokensFile, type Scope } from '../../src/auth/tokens.js'

/** Writes `<dir>`'s tokens file with one token per entry of `specs`; returns the tokens by name. */
export async function withTokens(dir: string, specs: Record<string, Scope[]>): Promise<Record<string, string>> {
  const made = Object.entries(specs).map(([name, scopes]) => ({ name, ...newToken(name, scopes) }))
  await writeTokensFile(
    tokensPath(dir),
    made.map((m) => m.record),
  )
  return Object.fromEntries(made.map((m) => [m.name, m.token]))
}

/** The Authorization header of `token`. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

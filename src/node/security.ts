/**
 * The start-up safety check of a node and the `security` section of its status: a node that
 * listens beyond loopback must not serve an open API or accept any peer (docs/SECURITY.md).
 */
import { isIP } from 'node:net'
import { sledlogError } from '../errors.js'

/** What the check looks at. */
export interface SecurityFacts {
  readonly host: string
  /** Valid API tokens in the tokens file. */
  readonly apiTokens: number
  readonly tokensFile: string
  /** Sleds on the replication allow-list (undefined: any authenticated peer). */
  readonly allow: number | undefined
  readonly syncToken: boolean
  readonly tls: boolean
  readonly insecure: boolean
  readonly allowedHosts: readonly string[]
  readonly corsOrigins: readonly string[]
}

/** The `security` section of GET /v1/status. */
export interface SecurityStatus {
  readonly loopbackOnly: boolean
  readonly apiAuth: { readonly enabled: boolean; readonly tokens: number }
  readonly sync: { readonly allowList: number | null; readonly token: boolean }
  readonly tls: boolean
  readonly allowedHosts: readonly string[]
  readonly corsOrigins: readonly string[]
  readonly insecure: boolean
  readonly warnings: readonly string[]
}

/** True for 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h === '::1') return true
  return isIP(h) === 4 && h.startsWith('127.')
}

/** What a node listening off loopback lacks, each with the command or flag that fixes it. */
function missing(f: SecurityFacts): string[] {
  const out: string[] = []
  if (f.apiTokens === 0)
    out.push(
      `no API tokens (anyone who reaches the port could append entries signed with this node's key): ` +
        `create one with 'sledlog token create --data DIR --name NAME --scope admin' ` +
        `(tokens file ${f.tokensFile}; --api-tokens FILE points elsewhere)`,
    )
  if ((f.allow ?? 0) === 0 && !f.syncToken)
    out.push(
      'no replication allow-list or sync token (any key could replicate with this node): ' +
        "give '--allow SLED' for each peer, or a shared token in SLEDLOG_TOKEN",
    )
  return out
}

/**
 * Throws CONFIG_INVALID when the node listens off loopback without API tokens and without a
 * replication allow-list or token, unless `insecure`. Returns the warnings to log and show.
 */
export function checkSecurity(f: SecurityFacts): string[] {
  if (isLoopbackHost(f.host)) return []
  const gaps = missing(f)
  if (gaps.length > 0 && !f.insecure) {
    throw sledlogError(
      'CONFIG_INVALID',
      `refusing to listen on ${f.host} (not loopback) without protection: ${gaps.join('; ')}. ` +
        "Or pass '--insecure' to run unprotected anyway.",
      { missing: gaps.length },
    )
  }
  const warnings = gaps.map((g) => `insecure: ${g}`)
  if (!f.tls && f.apiTokens > 0)
    warnings.push('API tokens travel in clear text off loopback: serve TLS (--tls-cert, --tls-key)')
  return warnings
}

/**
 * The status section from the facts, the warnings of {@link checkSecurity} and the API tokens as
 * they are now (the file is reloaded while the node runs).
 */
export function securityStatus(
  f: SecurityFacts,
  warnings: readonly string[],
  apiAuth: { readonly enabled: boolean; readonly tokens: number },
): SecurityStatus {
  return {
    loopbackOnly: isLoopbackHost(f.host),
    apiAuth,
    sync: { allowList: f.allow ?? null, token: f.syncToken },
    tls: f.tls,
    allowedHosts: f.allowedHosts,
    corsOrigins: f.corsOrigins,
    insecure: f.insecure,
    warnings,
  }
}

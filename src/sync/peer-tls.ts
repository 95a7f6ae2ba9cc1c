/**
 * How the dialer trusts `wss://` peers (NodeConfig.peerTls).
 *
 * - `caFile`: a PEM bundle that replaces the system roots (a private CA for the cluster).
 * - `pins`: SHA-256 fingerprints of acceptable peer certificates, checked after the TLS
 *   handshake and before any sledlog byte is exchanged. With pins and no `caFile` the
 *   certificate chain and host name are not checked (self-signed peer certificates are what
 *   pinning is for); with both, the chain must verify and the certificate must match a pin.
 *
 * The sledlog handshake authenticates the peer's sled key either way; TLS adds confidentiality
 * and keeps a network attacker from learning which sleds talk.
 */
import { readFileSync } from 'node:fs'
import type { TLSSocket } from 'node:tls'
import { sledlogError } from '../errors.js'

/** Peer TLS settings, as NodeConfig holds them. */
export interface PeerTlsConfig {
  readonly caFile?: string
  readonly pins?: readonly string[]
}

/** Loaded trust: CA bytes and normalised pins (64 lowercase hex digits). */
export interface PeerTrust {
  readonly ca?: Buffer
  readonly pins: ReadonlySet<string>
}

/** A pin in any usual spelling (`AB:CD:…`, `abcd…`) as 64 lowercase hex digits, or null. */
export function normalizePin(pin: string): string | null {
  const hex = pin.replace(/[:\s]/g, '').toLowerCase()
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null
}

/** Reads the CA file and checks the pins; CONFIG_INVALID names what is wrong. */
export function loadPeerTrust(cfg: PeerTlsConfig | undefined): PeerTrust {
  const pins = new Set<string>()
  for (const p of cfg?.pins ?? []) {
    const n = normalizePin(p)
    if (n === null)
      throw sledlogError('CONFIG_INVALID', `peer TLS pin is not a SHA-256 fingerprint: ${p.slice(0, 100)}`)
    pins.add(n)
  }
  if (cfg?.caFile === undefined) return { pins }
  let ca: Buffer
  try {
    ca = readFileSync(cfg.caFile)
  } catch (err) {
    throw sledlogError('CONFIG_INVALID', `peer TLS CA file ${cfg.caFile}: ${(err as Error).message}`)
  }
  if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----'))
    throw sledlogError('CONFIG_INVALID', `peer TLS CA file ${cfg.caFile} holds no PEM certificate`)
  return { ca, pins }
}

/** TLS options for the ws client (only for `wss://` URLs). */
export function tlsOptions(trust: PeerTrust): { ca?: Buffer; rejectUnauthorized: boolean } {
  // Pins alone replace chain validation (self-signed peers); a CA file is always enforced.
  const rejectUnauthorized = trust.ca !== undefined || trust.pins.size === 0
  return { ...(trust.ca === undefined ? {} : { ca: trust.ca }), rejectUnauthorized }
}

/** Null when the peer's certificate matches a pin (or none are set), else why not. */
export function pinMismatch(trust: PeerTrust, socket: TLSSocket): string | null {
  if (trust.pins.size === 0) return null
  const fp = socket.getPeerCertificate()?.fingerprint256
  const got = typeof fp === 'string' ? normalizePin(fp) : null
  if (got !== null && trust.pins.has(got)) return null
  return `peer certificate ${got ?? '(none)'} matches no pinned fingerprint`
}

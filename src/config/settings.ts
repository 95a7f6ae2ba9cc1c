/**
 * The settings of a node as an operator gives them: what each one is, where it can come from
 * (flag, environment variable, config file key) and its default.
 */
import type { SledId } from '../core/ids.js'
import type { RecoveryMode } from '../sync/recovery.js'

/** Log levels, most to least severe; `silent` turns logging off. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** A node's settings after resolution: every value validated, defaults filled in. */
export interface NodeSettings {
  /** Data directory: key file and LevelDB. */
  readonly data: string
  /** Address to listen on. */
  readonly host: string
  /** Port for HTTP and websocket sync; 0 picks a free one. */
  readonly port: number
  /** Peer base URLs (`ws://` or `wss://`) to dial. */
  readonly peers: readonly string[]
  /** Shared secret both sides of a link must prove. */
  readonly token?: string
  /** Sleds allowed to connect; absent: any peer that authenticates. */
  readonly allow?: readonly SledId[]
  /**
   * Admin public keys (sled ids) whose revocations retire their target (PROTOCOL.md §6.5); every
   * node of a cluster must list the same ones, or they read different `retired` flags.
   */
  readonly adminKeys?: readonly SledId[]
  /** fsync every commit. */
  readonly sync: boolean
  /** Configured peers that must hold a write before it is answered, unless it says (0: local). */
  readonly minAcks: number
  /** How long a write waits for its acknowledgements unless it says, ms. */
  readonly ackTimeoutMs?: number
  /** When a recovering node warns that it still waits (it never stops waiting on a timeout). */
  readonly recoveryTimeoutMs?: number
  /** Configured peers whose receipts prove a recovering node's head (default: every dialed one). */
  readonly recoveryQuorum?: number
  /** What a proven recovery leads to: a successor key (default) or appending on under the old key. */
  readonly recoveryMode: RecoveryMode
  /** Capacity of the ingest bus in events; producers' events past it are dropped (and recorded). */
  readonly ingestCapacity?: number
  readonly logLevel: LogLevel
  /**
   * The operator's explicit opt-out of the start-up safety check: a node listening off loopback
   * otherwise refuses to start without API tokens and without a sync allow-list or token.
   */
  readonly insecure: boolean
  /** API tokens file (hashed tokens with scopes); absent: the node's default in its data directory. */
  readonly apiTokensFile?: string
  /** PEM certificate chain and key: serve HTTPS and WSS. Both or neither. */
  readonly tlsCert?: string
  readonly tlsKey?: string
  /** PEM CA bundle that `wss://` peers' certificates are checked against instead of the system roots. */
  readonly peerCa?: string
  /** SHA-256 fingerprints of the certificates `wss://` peers may present: 64 lowercase hex characters. */
  readonly peerPins?: readonly string[]
  /** Host header values the API answers besides loopback names and IP literals (lowercase). */
  readonly allowedHosts?: readonly string[]
  /** Browser origins (`scheme://host[:port]`) allowed to call the API cross-origin. */
  readonly corsOrigins?: readonly string[]
}

/** The name of a setting. */
export type SettingName = keyof NodeSettings

/** Where a resolved setting came from. */
export type Origin = 'flag' | 'env' | 'file' | 'default'

/** The three names of one setting. */
export interface SettingSource {
  /** Command-line flag, without the leading `--`. */
  readonly flag: string
  /** Environment variable. */
  readonly env: string
  /** Key in the JSON config file. */
  readonly file: string
  /** The value is a secret: messages never show it. */
  readonly secret?: true
  /** The value is a file path: relative paths in the config file are relative to the file. */
  readonly path?: true
}

/** Where each setting can come from. Lists are repeatable flags, comma-separated in the env. */
export const SETTING_SOURCES: Readonly<Record<SettingName, SettingSource>> = {
  data: { flag: 'data', env: 'SLEDLOG_DATA', file: 'data', path: true },
  host: { flag: 'host', env: 'SLEDLOG_HOST', file: 'host' },
  port: { flag: 'port', env: 'SLEDLOG_PORT', file: 'port' },
  peers: { flag: 'peer', env: 'SLEDLOG_PEERS', file: 'peers' },
  token: { flag: 'token', env: 'SLEDLOG_TOKEN', file: 'token', secret: true },
  allow: { flag: 'allow', env: 'SLEDLOG_ALLOW', file: 'allow' },
  adminKeys: { flag: 'admin-key', env: 'SLEDLOG_ADMIN_KEYS', file: 'adminKeys' },
  sync: { flag: 'sync', env: 'SLEDLOG_SYNC', file: 'sync' },
  minAcks: { flag: 'min-acks', env: 'SLEDLOG_MIN_ACKS', file: 'minAcks' },
  ackTimeoutMs: { flag: 'ack-timeout', env: 'SLEDLOG_ACK_TIMEOUT', file: 'ackTimeoutMs' },
  recoveryTimeoutMs: { flag: 'recovery-timeout', env: 'SLEDLOG_RECOVERY_TIMEOUT', file: 'recoveryTimeoutMs' },
  recoveryQuorum: { flag: 'recovery-quorum', env: 'SLEDLOG_RECOVERY_QUORUM', file: 'recoveryQuorum' },
  recoveryMode: { flag: 'recovery-mode', env: 'SLEDLOG_RECOVERY_MODE', file: 'recoveryMode' },
  ingestCapacity: { flag: 'ingest-capacity', env: 'SLEDLOG_INGEST_CAPACITY', file: 'ingestCapacity' },
  logLevel: { flag: 'log-level', env: 'SLEDLOG_LOG_LEVEL', file: 'logLevel' },
  insecure: { flag: 'insecure', env: 'SLEDLOG_INSECURE', file: 'insecure' },
  // `_FILE`: SLEDLOG_API_TOKEN (one letter away) is the clients' token itself.
  apiTokensFile: { flag: 'api-tokens', env: 'SLEDLOG_API_TOKENS_FILE', file: 'apiTokensFile', path: true },
  tlsCert: { flag: 'tls-cert', env: 'SLEDLOG_TLS_CERT', file: 'tlsCert', path: true },
  tlsKey: { flag: 'tls-key', env: 'SLEDLOG_TLS_KEY', file: 'tlsKey', path: true },
  peerCa: { flag: 'peer-ca', env: 'SLEDLOG_PEER_CA', file: 'peerCa', path: true },
  peerPins: { flag: 'peer-pin', env: 'SLEDLOG_PEER_PINS', file: 'peerPins' },
  allowedHosts: { flag: 'allowed-host', env: 'SLEDLOG_ALLOWED_HOSTS', file: 'allowedHosts' },
  corsOrigins: { flag: 'cors-origin', env: 'SLEDLOG_CORS_ORIGINS', file: 'corsOrigins' },
}

/** Flag and environment variable naming the JSON config file. */
export const CONFIG_SOURCE = { flag: 'config', env: 'SLEDLOG_CONFIG' } as const

/** Defaults of the settings that have one. */
export const DEFAULTS = {
  // Loopback: a node is reachable from elsewhere only when the operator says so.
  host: '127.0.0.1',
  port: 7400,
  peers: [] as readonly string[],
  sync: false,
  minAcks: 0,
  logLevel: 'info' as LogLevel,
  recoveryMode: 'succession' as RecoveryMode,
  insecure: false,
} as const

/**
 * The one error type of sledlog and its stable codes.
 *
 * Codes are part of the public contract (docs/ERRORS.md, the HTTP status table, guard rejection
 * counters): they never change meaning once released. Messages are for humans and may change.
 */

/** Every stable error code, with the one-line meaning documented in docs/ERRORS.md. */
export const ERROR_CODES = {
  // identity
  KEY_FILE_PERMISSIONS: 'key file is readable by group or others',
  KEY_FILE_CORRUPT: 'key file cannot be parsed or does not match its public key',
  KEY_ROTATION_PENDING: 'a key rotation of the data directory was interrupted; run it again to finish it',
  // entries and local input
  ENTRY_INVALID: 'entry fields are missing, of the wrong type or out of range',
  ENTRY_TOO_LARGE: 'encoded entry exceeds the configured size limit',
  ENTRY_ID_CONFLICT: 'the idempotency id already names an entry of this sled with another type or payload',
  // updates from disk or peers (guard rejections)
  UPDATE_MALFORMED: 'update bytes are not a well-formed sledlog Yjs update',
  UPDATE_TOO_LARGE: 'update exceeds the configured size limit',
  UPDATE_DELETION: 'update carries a non-empty delete set',
  UPDATE_NOT_APPEND: 'update holds a struct that is not an append to a sled log',
  UPDATE_BAD_SIGNATURE: 'an entry signature does not verify',
  UPDATE_BAD_BINDING: 'an entry is not bound to its Yjs client and clock (sled, seq)',
  UPDATE_GAP: 'update starts past the local head of a sled (missing predecessors)',
  // key succession and revocation records (guard rejections too)
  SUCCESSION_INVALID: 'a succession record that is not entry 0 of its sled, or names its own sled as predecessor',
  SUCCESSION_BAD_ENDORSEMENT: "a succession record's endorsement does not verify under the predecessor's key",
  REVOCATION_BAD_SIGNATURE: "a revocation record's signature does not verify under the target's or admin key",
  // peers
  PEER_PROTOCOL: 'a peer sent a message that is not part of the sync protocol',
  PEER_AUTH_FAILED: 'a peer failed the signed challenge handshake or the shared token check',
  PEER_NOT_ALLOWED: 'a peer authenticated as a sled that is not on the allow-list',
  PEER_VIOLATIONS: 'a peer sent too many rejected updates or protocol violations',
  // HTTP API input
  HTTP_BAD_JSON: 'request body is not valid JSON',
  HTTP_PAYLOAD_TOO_LARGE: 'request body exceeds the size limit',
  HTTP_BAD_REQUEST: 'request parameters are missing or malformed',
  HTTP_NOT_FOUND: 'no such route',
  HTTP_METHOD_NOT_ALLOWED: 'method not allowed on this route',
  HTTP_UNAUTHORIZED: 'the request carries no valid API token',
  HTTP_FORBIDDEN: "the API token lacks the route's scope",
  HTTP_HOST_NOT_ALLOWED: 'the Host header names neither this node nor an allowed host (DNS rebinding defence)',
  HTTP_ORIGIN_NOT_ALLOWED: 'the browser Origin is neither this node nor an allowed CORS origin',
  HTTP_UNSUPPORTED_MEDIA_TYPE: 'request body is not declared as application/json',
  HTTP_TOO_MANY_STREAMS: 'too many event streams are open, in all or for this client',
  HTTP_HEADERS_TOO_LARGE: 'request line or headers exceed the size limit',
  HTTP_REQUEST_TIMEOUT: 'the client did not send the whole request in time',
  CONSUMER_NOT_FOUND: 'no durable consumer of that name exists (create it first)',
  APPENDS_HELD: 'appends wait while this node recovers its own entries from peers',
  NOT_ENOUGH_PEERS: 'fewer configured peers are connected than the write asked to acknowledge it; nothing was appended',
  ACKS_TIMEOUT: 'the entries are stored on this node but not enough peers proved they hold them in time',
  RECOVERING: 'writes are refused until this node has proven its own head after a lost store (recovery)',
  RECOVERY_NOT_ACCEPTED: 'a recovery decision was refused: the node is not recovering, or its head moved since',
  // configuration
  CONFIG_INVALID: 'a configuration value is missing or invalid',
  // store and lifecycle
  STORE_WRITE_FAILED: 'the LevelDB write failed; nothing of the batch was applied',
  STORE_CORRUPT: 'stored data fails its integrity check',
  LOG_CLOSED: 'the log is closed or closing',
  LOG_NOT_OPEN: 'the log has not been opened',
  OWN_HEAD_BEHIND: 'this node holds fewer of its own entries than it has written; appends wait for recovery',
  SLED_FORKED: "this node's own sled signed two versions of a seq (it is forked); appends are refused",
  SLED_RETIRED: "this node's own sled is retired (by a succession or revocation) at the seq an append would use",
  NODE_STOPPING: 'the node is shutting down and accepts no more writes',
  // backup and restore
  BACKUP_INVALID: 'a backup or export file is truncated, damaged or not in the format (PROTOCOL.md §7.3)',
  BACKUP_BUSY: 'another backup of this node is streaming; one runs at a time',
} as const

/** A stable error code; see {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES

/** The codes a guard rejection can carry. */
export type RejectCode = Extract<
  ErrorCode,
  | `UPDATE_${string}`
  | 'ENTRY_INVALID'
  | 'ENTRY_TOO_LARGE'
  | 'SUCCESSION_INVALID'
  | 'SUCCESSION_BAD_ENDORSEMENT'
  | 'REVOCATION_BAD_SIGNATURE'
>

/** An error with a stable {@link ErrorCode}; `details` carries machine-readable context. */
export class SledlogError extends Error {
  /** The stable code. */
  readonly code: ErrorCode
  /** Optional structured context (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SledlogError'
    this.code = code
    this.details = details
  }
}

/** Creates a {@link SledlogError}; the factory keeps call sites short (hypercore style). */
export function sledlogError(
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): SledlogError {
  return new SledlogError(code, message, details, cause === undefined ? undefined : { cause })
}

/** True when `err` is a {@link SledlogError}, optionally with the given code. */
export function isSledlogError(err: unknown, code?: ErrorCode): err is SledlogError {
  return err instanceof SledlogError && (code === undefined || err.code === code)
}

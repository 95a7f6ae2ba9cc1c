/**
 * The test-only TLS fixtures of test/fixtures/tls (a CA, a node certificate it signed for
 * 127.0.0.1 and localhost, and a self-signed stranger), shared by the HTTP, sync and CLI tests.
 */
import { fileURLToPath } from 'node:url'

/** The fixtures' directory. */
export const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url))

/** A fixture file's path. */
export const tlsFile = (name: 'ca.pem' | 'node.pem' | 'node.key' | 'stranger.pem' | 'stranger.key'): string =>
  `${TLS_DIR}${name}`

/**
 * Creating a node's key ahead of its first start (`sledlog keygen`, test clusters) together with
 * its empty store. A node that starts with a key but no store recovers its head from its peers
 * (it may have lost a disk: docs/ARCHITECTURE.md "Recovery"); a key made a moment ago has signed
 * nothing, and creating its store with it says so. A key that already exists is kept and its
 * store never touched: making a store for it would hide a lost one.
 */
import { join } from 'node:path'
import type { KeyPair } from '../core/signing.js'
import { loadIdentity, loadOrCreateIdentity } from '../store/identity.js'
import { deriveMacKey, LevelStore } from '../store/level-store.js'

/** The database directory inside a data directory (docs/PROTOCOL.md §7.1). */
export const DB_DIR = 'db'

/**
 * Loads the key of `dataDir`, or creates it (from `seed` when given) along with its empty store.
 * `created` tells which.
 */
export async function initDataDir(dataDir: string, seed?: Uint8Array): Promise<{ keys: KeyPair; created: boolean }> {
  const existing = await loadIdentity(dataDir)
  if (existing !== undefined) return { keys: existing, created: false }
  const keys = await loadOrCreateIdentity(dataDir, seed)
  const store = new LevelStore({ path: join(dataDir, DB_DIR), macKey: deriveMacKey(keys.seed) })
  await store.open()
  await store.close()
  return { keys, created: true }
}

/**
 * Multi-process clusters for tests: a {@link Cluster} in a temp dir, stopped (every child
 * killed) and removed when the test finishes, pass or fail; on failure every node's state and
 * stderr tail is printed.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFailed, onTestFinished } from 'vitest'
import { Cluster, eventually, type ClusterOptions } from '../../src/harness/cluster.js'

export { eventually }

/** Starts a cluster for the current test. */
export async function testCluster(opts: Omit<ClusterOptions, 'baseDir'>): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sledlog-cluster-'))
  const cluster = new Cluster({ ...opts, baseDir: dir })
  onTestFailed(() => {
    console.error(`cluster in ${dir}:\n${cluster.describe()}`)
  })
  // One hook, so the order is certain: children die before their directories go.
  onTestFinished(async () => {
    await cluster.stop()
    await rm(dir, { recursive: true, force: true })
  })
  await cluster.start()
  return cluster
}

/** Throws with every violation when the list is not empty (for use after a phase). */
export function assertNoViolations(phase: string, violations: readonly string[]): void {
  if (violations.length > 0) throw new Error(`invariants violated after ${phase}:\n  ${violations.join('\n  ')}`)
}

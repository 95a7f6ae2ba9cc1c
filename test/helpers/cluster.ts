/**
 * Multi-process clusters for tests: a {@link Cluster} in a temp dir, stopped (every child
 * killed) and removed when the test finishes, pass or fail; on failure every node's state and
 * stderr tail is printed.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFailed, onTestFinished } from 'vitest'
import {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  eventually,
  HttpError,
  type NodeStatus,
} from '../../src/harness/cluster.js'

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

/**
 * Waits until `check` passes on `node`'s status (true; else what it says is wrong, shown on
 * timeout) and returns that status. A 503 RECOVERING meanwhile, a node between two keys after a
 * proven recovery, is waited out.
 */
export async function statusWhen(
  node: ClusterNode,
  check: (st: NodeStatus) => true | string[],
  what: string,
  timeoutMs = 30_000,
): Promise<NodeStatus> {
  let out: NodeStatus | null = null
  await eventually(
    async () => {
      const st = await node.status().catch((err: unknown) => {
        if (err instanceof HttpError && err.code === 'RECOVERING') return null
        throw err
      })
      if (st === null) return ['moving to a successor key']
      const verdict = check(st)
      if (verdict === true) out = st
      return verdict
    },
    timeoutMs,
    { what },
  )
  return out as unknown as NodeStatus
}

/** Waits until `node` answers as a sled other than `from` (it moved to a successor key); its status then. */
export function movedOn(node: ClusterNode, from: string, timeoutMs = 30_000): Promise<NodeStatus> {
  return statusWhen(
    node,
    (st) => st.sled !== from || [`still ${from.slice(0, 8)}: recovery ${JSON.stringify(st.recovery).slice(0, 300)}`],
    `${node.name} to move on from ${from.slice(0, 8)}`,
    timeoutMs,
  )
}

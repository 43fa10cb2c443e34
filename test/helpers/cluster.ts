/**
 * Several `fastify-tus serve` instances on one PostgreSQL schema behind the
 * round-robin balancer of round-robin-proxy.ts, and uploads from tus-js-client
 * with its default retry schedule, for the failover tests.
 */
import { join } from 'node:path'
import type { Test } from 'tap'
import * as tus from 'tus-js-client'
import { tempDir } from './server.js'
import { spawnServer, type Spawned } from './spawn.js'
import { sleep } from './tus.js'
import { testSchema } from './postgres.js'
import { roundRobinProxy, type RoundRobinProxy } from './round-robin-proxy.js'

const BIN = 'dist/lib/cli/main.js'
/** tus-js-client's default (and Uppy's): about 9 s of patience. */
export const DEFAULT_RETRY_DELAYS = [0, 1000, 3000, 5000]

export interface Cluster {
  proxy: RoundRobinProxy
  /** Start one more instance (added to the balancer). */
  start: () => Promise<Spawned>
  instances: Spawned[]
  /** The upload directory the instances share (with `s3`: each gets an empty one of its own instead). */
  uploadDir: string
}

/**
 * Three instances on a fresh schema. `bodyRate` paces bodies in the balancer so
 * uploads last long enough to kill or restart an instance under them; `extra`
 * flags go to every instance; with `ownDirs`, each instance gets an upload
 * directory of its own (object storage: nothing is shared but the database and the bucket).
 */
export async function cluster (t: Test, url: string, bodyRate: number, extra: string[] = [], ownDirs = false): Promise<Cluster> {
  const schema = testSchema(t)
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  let started = 0
  const args = (): string[] => [BIN, 'serve', '--port', '0', '--db', url, '--db-schema', schema, '--db-pool-size', '4',
    '--upload-dir', ownDirs ? join(dir, `instance-${++started}`) : uploadDir, '--shutdown-timeout', '3', '--log-level', 'info', ...extra]
  const proxy = await roundRobinProxy(t, { bodyRate })
  const start = async (): Promise<Spawned> => {
    const spawned = await spawnServer(t, args())
    proxy.add(spawned.origin)
    return spawned
  }
  const instances = await Promise.all([start(), start(), start()])
  await sleep(500) // the first health checks
  return { proxy, start, uploadDir, instances }
}

/**
 * One tus-js-client upload through the balancer with the default retry schedule; resolves with its id or its error.
 * With `holdLast`, the PATCH of the last chunk waits for it: the upload cannot finish before.
 */
export function upload (endpoint: string, data: Buffer, chunkSize: number, holdLast?: Promise<void>): Promise<{ id?: string; error?: unknown; retries: number }> {
  return new Promise((resolve) => {
    let retries = 0
    const u = new tus.Upload(data, {
      endpoint,
      chunkSize,
      retryDelays: DEFAULT_RETRY_DELAYS,
      onBeforeRequest: async (req) => {
        if (holdLast !== undefined && req.getMethod() === 'PATCH' && Number(req.getHeader('Upload-Offset')) + chunkSize >= data.length) await holdLast
      },
      onShouldRetry: () => { retries++; return true },
      onSuccess: () => resolve({ id: new URL(u.url!).pathname.split('/').pop()!, retries }),
      onError: (error) => resolve({ error, retries })
    })
    u.start()
  })
}

/** The balancer's answers by status, for a comment. */
export const statusSummary = (proxy: RoundRobinProxy): string =>
  [...proxy.statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(', ')

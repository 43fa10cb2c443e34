/**
 * Expiry cleanup on every instance: two instances on one PostgreSQL database
 * clean up at the same moment, and each expired upload is removed exactly once
 * (one onTerminate in all), with no error logged on either side.
 */
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { TusPluginOptions } from '../lib/index.js'
import { startServer, tempDir, type TestServer } from './helpers/server.js'
import { bytes, create, patch } from './helpers/http.js'
import { idOf, sleep, waitFor } from './helpers/tus.js'
import { postgresOrSkip, query, testSchema } from './helpers/postgres.js'

const url = postgresOrSkip(t)

interface Instance { server: TestServer; terminated: string[]; errors: string[] }

/** Error-level log lines of an instance (Fastify's logger, written to memory). */
function errorLog (errors: string[]): { level: string; stream: Writable } {
  return {
    level: 'error',
    stream: new Writable({ write (chunk, _encoding, done) { errors.push(String(chunk)); done() } })
  }
}

async function instances (t: Test, count: number, options: TusPluginOptions): Promise<{ list: Instance[]; schema: string; uploadDir: string }> {
  const schema = testSchema(t)
  const uploadDir = join(tempDir(t), 'uploads')
  const list: Instance[] = []
  for (let i = 0; i < count; i++) {
    const terminated: string[] = []
    const errors: string[] = []
    const server = await startServer(t, {
      db: url, schema, uploadDir, poolSize: 10, ...options,
      onTerminate: ({ upload, reason }) => { if (reason === 'expired') terminated.push(upload.id) }
    }, undefined, { logger: errorLog(errors) })
    list.push({ server, terminated, errors })
  }
  return { list, schema, uploadDir }
}

async function makeExpired (endpoint: string, count: number): Promise<string[]> {
  const urls = await Promise.all(Array.from({ length: count }, async () => create(endpoint, { 'Upload-Length': '100' })))
  // Some with bytes, some without: both expire.
  await Promise.all(urls.map(async (u, i) => i % 2 === 0 ? patch(u, 0, bytes(10, i)) : undefined))
  return urls.map(idOf)
}

/** Each id removed exactly once across the instances. */
function assertOnce (t: Test, ids: string[], list: Instance[]): void {
  const all = list.flatMap((i) => i.terminated)
  const counts = new Map<string, number>()
  for (const id of all) counts.set(id, (counts.get(id) ?? 0) + 1)
  t.same([...counts.entries()].filter(([, n]) => n !== 1), [], 'no upload removed twice')
  t.same([...ids].sort(), [...counts.keys()].sort(), 'every expired upload removed')
  t.same(list.flatMap((i) => i.errors), [], 'no error logged on any instance')
}

if (url !== undefined) {
  t.test('two instances run the cleanup at the same moment: each expired upload removed once', async (t) => {
    const EXPIRED = 60
    const { list, schema, uploadDir } = await instances(t, 2, { expiration: 300, cleanupInterval: 0 })
    const [a, b] = list as [Instance, Instance]
    const ids = await makeExpired(a.server.endpoint, EXPIRED)
    await sleep(400)
    // One more that is not expired, written through an instance with a long expiration.
    const longLived = await startServer(t, { db: url, schema, uploadDir, expiration: 600_000, cleanupInterval: 0 })
    const fresh = await create(longLived.endpoint, { 'Upload-Length': '100' })
    t.equal((await patch(fresh, 0, bytes(5))).status, 204)

    const counts: number[] = []
    for (let round = 0; round < 3; round++) {
      counts.push(...await Promise.all([a.server.app.tus.cleanupExpired(), b.server.app.tus.cleanupExpired(), a.server.app.tus.cleanupExpired()]))
    }
    t.equal(counts.reduce((x, y) => x + y, 0), EXPIRED, `removals add up to ${EXPIRED} (${counts.join(', ')})`)
    assertOnce(t, ids, list)
    t.same(readdirSync(uploadDir), [idOf(fresh)], 'only the fresh upload\'s bytes remain')
    const rows = await query<{ id: string }>('SELECT id FROM tus_uploads', [], schema)
    t.same(rows.map((r) => r.id), [idOf(fresh)], 'only the fresh upload\'s row remains')
    t.equal((await query('SELECT * FROM tus_locks', [], schema)).length, 0, 'no lock left behind')
  })

  t.test('three instances whose cleanup timers all run: each expired upload removed once', async (t) => {
    const EXPIRED = 40
    const { list, schema } = await instances(t, 3, { expiration: 200, cleanupInterval: 50 })
    const ids = await makeExpired(list[0]!.server.endpoint, EXPIRED)
    await waitFor(async () => list.flatMap((i) => i.terminated).length >= EXPIRED, 10_000, 'the timers to remove every expired upload')
    await sleep(200) // a few more rounds on every instance
    assertOnce(t, ids, list)
    t.ok(list.filter((i) => i.terminated.length > 0).length >= 1, `removals by instance: ${list.map((i) => i.terminated.length).join(', ')}`)
    t.same(await query('SELECT id FROM tus_uploads', [], schema), [], 'no row left')
  })
}

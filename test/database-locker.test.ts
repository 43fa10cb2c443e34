/**
 * DatabaseLocker on its own, on SQLite (always) and on PostgreSQL (when
 * TUS_TEST_POSTGRES_URL is set): one holder at a time, renewal past the lease,
 * a dead holder's lease lapsing, a stolen lease reported as lost, a holder
 * blocked past its lease no longer vouching for it, a takeover
 * request passed on to the holder; and the plugin's `locker: 'database'`.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import Database from 'better-sqlite3'
import { DatabaseLocker, migrate } from '../lib/index.js'
import { openDatabase } from '../lib/store/meta/dialects.js'
import type { TusDatabase } from '../lib/store/meta/schema.js'
import { startServer, tempDir } from './helpers/server.js'
import { bytes, create, patch } from './helpers/http.js'
import { sleep, waitFor } from './helpers/tus.js'
import { POSTGRES_URL, testSchema } from './helpers/postgres.js'

const backends = POSTGRES_URL === undefined ? ['sqlite'] as const : ['sqlite', 'postgres'] as const
if (POSTGRES_URL === undefined) t.comment('the PostgreSQL half of this file is skipped: TUS_TEST_POSTGRES_URL is not set')

async function database (t: Test, backend: 'sqlite' | 'postgres'): Promise<Kysely<TusDatabase>> {
  const option = backend === 'sqlite' ? join(tempDir(t), 'locks.db') : POSTGRES_URL!
  const schema = backend === 'postgres' ? testSchema(t) : undefined
  const { db } = await openDatabase(option, { schema })
  t.teardown(() => db.destroy())
  await migrate(db)
  return db
}

function locker (t: Test, db: Kysely<TusDatabase>, lease = 400, instanceTimeout?: number): DatabaseLocker {
  const l = new DatabaseLocker(db, { lease, ...(instanceTimeout === undefined ? {} : { instanceTimeout }) })
  t.teardown(() => l.close())
  return l
}

for (const backend of backends) {
  t.test(`${backend}: one holder at a time, across lockers`, async (t) => {
    const db = await database(t, backend)
    const [a, b] = [locker(t, db), locker(t, db)]
    const held = await a.tryAcquire('u1')
    t.ok(held, 'a takes the lock')
    t.equal(await b.tryAcquire('u1'), null, 'b is refused')
    t.equal(await a.tryAcquire('u1'), null, 'so is a second request of a')
    t.ok(await b.tryAcquire('u2'), 'another upload is free')
    await held!.release()
    await held!.release()
    const again = await b.tryAcquire('u1')
    t.ok(again, 'free again after release (release is idempotent)')
    await again!.release()
  })

  t.test(`${backend}: a held lock is renewed past its lease; a dead holder's lapses`, async (t) => {
    const db = await database(t, backend)
    const [a, b] = [locker(t, db, 300), locker(t, db, 300)]
    const held = await a.tryAcquire('live')
    await sleep(700)
    t.equal(await b.tryAcquire('live'), null, 'still held after two leases: renewed')
    await held!.release()

    // A holder that died: its row stays, nobody renews it.
    await db.insertInto('tus_locks').values({ id: 'dead', owner: 'gone', expires_at: Date.now() + 300, requested_at: null }).execute()
    t.equal(await b.tryAcquire('dead'), null, 'held while the lease runs')
    const started = Date.now()
    let lock = null
    while (lock === null && Date.now() - started < 2000) {
      await sleep(20)
      lock = await b.tryAcquire('dead')
    }
    t.ok(lock, 'taken once the lease lapsed')
    t.ok(Date.now() - started <= 600, `within the lease (${Date.now() - started} ms)`)
    await lock?.release()
    t.equal(await b.purgeLapsed(), 0, 'nothing to purge')
    await db.insertInto('tus_locks').values({ id: 'old', owner: 'gone', expires_at: Date.now() - 10_000, requested_at: null }).execute()
    t.equal(await b.purgeLapsed(), 1, 'a long-lapsed row is purged')
  })

  t.test(`${backend}: a dead instance's locks are free once its heartbeat expires, long before their lease`, async (t) => {
    const db = await database(t, backend)
    const b = locker(t, db, 60_000)
    const now = Date.now()
    // An instance that died: its heartbeat row runs out in 300 ms; its lock's lease in a minute.
    await db.insertInto('tus_instances').values({ id: 'dead', expires_at: now + 300, started_at: now }).execute()
    await db.insertInto('tus_locks').values({ id: 'u', owner: 'gone', expires_at: now + 60_000, requested_at: null, instance: 'dead' }).execute()
    t.equal(await b.tryAcquire('u'), null, 'held while its instance is alive')
    let lock = null
    while (lock === null && Date.now() - now < 3000) {
      await sleep(20)
      lock = await b.tryAcquire('u')
    }
    t.ok(lock, 'taken once the instance stopped beating')
    t.ok(Date.now() - now <= 800, `within its heartbeat timeout, not the lease (${Date.now() - now} ms)`)
    await lock?.release()
    // An instance whose row is gone (it shut down) holds nothing.
    await db.insertInto('tus_locks').values({ id: 'v', owner: 'gone', expires_at: Date.now() + 60_000, requested_at: null, instance: 'vanished' }).execute()
    const taken = await b.tryAcquire('v')
    t.ok(taken, 'a lock of an instance without a row is free at once')
    await taken?.release()
  })

  t.test(`${backend}: a live instance keeps its locks past its heartbeat timeout; closing frees them at once`, async (t) => {
    const db = await database(t, backend)
    const a = new DatabaseLocker(db, { lease: 60_000, instanceTimeout: 300 })
    const b = locker(t, db, 60_000, 300)
    const held = await a.tryAcquire('u')
    t.ok(held, 'a takes the lock')
    await sleep(900)
    t.equal(await b.tryAcquire('u'), null, 'still held after three heartbeat timeouts: a beats')
    t.equal(held!.held(), true, 'and a still vouches for it')
    const row = await db.selectFrom('tus_instances').select('expires_at').where('id', '=', a.instance).executeTakeFirst()
    t.ok(row !== undefined && Number(row.expires_at) > Date.now(), 'a\'s heartbeat row is current')
    // A close whose release did not reach the row (the row is put back): the instance row's removal frees it.
    await a.close()
    t.equal(await db.selectFrom('tus_instances').select('id').where('id', '=', a.instance).executeTakeFirst(), undefined, 'a\'s instance row is gone')
    await db.insertInto('tus_locks').values({ id: 'left', owner: 'x', expires_at: Date.now() + 60_000, requested_at: null, instance: a.instance }).execute()
    const again = await b.tryAcquire('left')
    t.ok(again, 'a lock row naming a closed instance is free at once')
    await again?.release()
  })

  t.test(`${backend}: an instance frozen past its heartbeat timeout loses every lock, even those nobody took`, async (t) => {
    const db = await database(t, backend)
    const a = locker(t, db, 60_000, 300)
    let lost = 0
    const first = await a.tryAcquire('u1', { onLost: () => { lost++ } })
    const second = await a.tryAcquire('u2', { onLost: () => { lost++ } })
    const until = Date.now() + 250
    while (Date.now() < until) { /* frozen: no timer runs */ }
    t.equal(first!.held(), false, 'held() false at once: the heartbeat is not vouched for')
    await waitFor(() => lost === 2, 1000, 'both holders told')
    t.equal(second!.held(), false, 'the other lock is lost too')
    await first!.release()
    await second!.release()
    t.ok(await a.tryAcquire('u3'), 'new locks can be taken once the heartbeat is current again')
  })

  t.test(`${backend}: a lease taken by someone else is reported lost`, async (t) => {
    const db = await database(t, backend)
    const a = locker(t, db, 300)
    let lost = 0
    const held = await a.tryAcquire('u', { onLost: () => { lost++ } })
    await db.updateTable('tus_locks').set({ owner: 'thief' }).where('id', '=', 'u').execute()
    t.equal(held!.held(), true, 'held() while the lease is ours')
    await waitFor(() => lost === 1, 1000, 'onLost')
    t.equal(held!.held(), false, 'held() false once lost')
    await held!.release()
    const row = await db.selectFrom('tus_locks').select('owner').where('id', '=', 'u').executeTakeFirst()
    t.equal(row?.owner, 'thief', 'releasing a lost lock leaves the new holder alone')
  })

  t.test(`${backend}: a holder blocked past its lease answers held() false at once, before any renewal ran`, async (t) => {
    const db = await database(t, backend)
    const a = locker(t, db, 300)
    let lost = 0
    const held = await a.tryAcquire('u', { onLost: () => { lost++ } })
    // A frozen process, as far as this one can tell: no timer runs meanwhile.
    const until = Date.now() + 250
    while (Date.now() < until) { /* blocked */ }
    t.equal(held!.held(), false, 'held() false: less than a third of the lease is vouched for')
    t.equal(lost, 1, 'and the holder was told through onLost')
    await held!.release()
    t.equal(held!.held(), false, 'held() false after release')
  })

  t.test(`${backend}: a request that would wait asks the holder to give way`, async (t) => {
    const db = await database(t, backend)
    const [a, b] = [locker(t, db, 300), locker(t, db, 300)]
    let asked = 0
    const held = await a.tryAcquire('u', { onReleaseRequested: () => { asked++; return true } })
    t.equal(await b.tryAcquire('u'), null, 'refused without asking')
    await sleep(200)
    t.equal(asked, 0, 'a plain request does not disturb the holder')
    t.equal(await b.tryAcquire('u', { wait: 100 }), null, 'refused, but asks')
    await waitFor(() => asked === 1, 1000, 'the holder to be asked')
    await held!.release()
    t.ok(await b.tryAcquire('u'), 'free once the holder let go')
  })
}

t.test("locker: 'database' on SQLite: uploads work and leave no lock behind", async (t) => {
  const file = join(tempDir(t), 'uploads.db')
  const { endpoint, app } = await startServer(t, { db: file, locker: 'database', lockLease: 1000 })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const statuses = (await Promise.all([patch(url, 0, bytes(10, 1)), patch(url, 0, bytes(10, 2))])).map((r) => r.status).sort()
  t.ok(statuses[0] === 204 && (statuses[1] === 409 || statuses[1] === 423), `one PATCH applied, the other 409 or 423 (${statuses.join(', ')})`)
  t.equal((await app.tus.get(url.split('/').pop()!))?.offset, 10)
  const sqlite = new Database(file, { readonly: true })
  try {
    t.same(sqlite.prepare('SELECT * FROM tus_locks').all(), [], 'no lock row left')
  } finally {
    sqlite.close()
  }
})

/** Migrations: run on start, safe to repeat and to race; a caller's Kysely instance is used as is. */
import t from 'tap'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import Database from 'better-sqlite3'
import Fastify, { type FastifyInstance } from 'fastify'
import { Kysely, SqliteDialect } from 'kysely'
import tus, { migrate, type TusPluginOptions } from '../lib/index.js'
import { tempDir } from './helpers/server.js'
import { TUS, send } from './helpers/http.js'
import { idOf } from './helpers/tus.js'

interface Started { app: FastifyInstance, origin: string }

async function start (t: { teardown (fn: () => unknown): void }, options: TusPluginOptions): Promise<Started> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(tus, options)
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, origin }
}

const tables = (path: string): string[] => {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name)
  } finally {
    db.close()
  }
}

t.test('two apps on the same new SQLite file start at once and both serve', async (t) => {
  const dir = tempDir(t)
  const db = join(dir, 'shared.db')
  const [a, b] = await Promise.all([
    start(t, { uploadDir: join(dir, 'a'), db }),
    start(t, { uploadDir: join(dir, 'b'), db })
  ])
  const ids: string[] = []
  for (const { origin } of [a, b]) {
    const res = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })
    t.equal(res.status, 201)
    ids.push(idOf(res.headers.location as string))
  }
  // one table: each app sees the other's rows
  for (const { app } of [a, b]) {
    t.same((await app.tus.list()).map((u) => u.id).sort(), [...ids].sort())
  }
  t.ok(tables(db).includes('tus_uploads'))
})

t.test('registering again on an existing database is a no-op', async (t) => {
  const dir = tempDir(t)
  const db = join(dir, 'uploads.db')
  const uploadDir = join(dir, 'uploads')
  const first = await start(t, { uploadDir, db })
  const res = await send('POST', `${first.origin}/files/`, { headers: { ...TUS, 'Upload-Length': '3' } })
  const id = idOf(res.headers.location as string)
  await first.app.close()
  const before = tables(db)
  const migrationRows = (): unknown[] => {
    const sqlite = new Database(db, { readonly: true })
    try { return sqlite.prepare('SELECT * FROM fastify_tus_migration').all() } finally { sqlite.close() }
  }
  const rowsBefore = migrationRows()

  const second = await start(t, { uploadDir, db })
  t.same(tables(db), before, 'no table added or dropped')
  t.same(migrationRows(), rowsBefore, 'no migration ran again')
  t.equal((await second.app.tus.get(id))?.length, 3, 'existing rows survive')
  const h = await send('HEAD', `${second.origin}/files/${id}`, { headers: TUS })
  t.equal(h.status, 200)
  t.equal(h.headers['upload-length'], '3')
})

t.test('migrate() twice on a Kysely instance; the plugin uses it and leaves it open', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'own.db')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(path) }) })
  t.teardown(() => db.destroy())
  await migrate(db)
  await migrate(db)
  t.ok((await db.introspection.getTables()).some((table) => table.name === 'tus_uploads'), 'the table exists')

  const { app, origin } = await start(t, { uploadDir: join(dir, 'uploads'), db })
  const res = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '7' } })
  t.equal(res.status, 201)
  const id = idOf(res.headers.location as string)
  const row = await db.selectFrom('tus_uploads').selectAll().where('id', '=', id).executeTakeFirst()
  t.ok(row, 'the row is in the caller\'s database')
  t.equal(Number(row?.upload_length), 7)

  await app.close()
  // still usable after the app closed: the plugin did not destroy it
  const count = await db.selectFrom('tus_uploads').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(count.n), 1, 'the Kysely instance is still open after close')
  await migrate(db)
})

t.test('two apps sharing one Kysely instance', async (t) => {
  const dir = tempDir(t)
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(join(dir, 'one.db')) }) })
  t.teardown(() => db.destroy())
  const [a, b] = await Promise.all([
    start(t, { uploadDir: join(dir, 'uploads'), db }),
    start(t, { uploadDir: join(dir, 'uploads'), db })
  ])
  const res = await send('POST', `${a.origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })
  t.equal(res.status, 201)
  const h = await send('HEAD', `${b.origin}/files/${idOf(res.headers.location as string)}`, { headers: TUS })
  t.equal(h.status, 200, 'b sees a\'s upload')
})

t.test('on SQLite the PostgreSQL driver is never loaded', async (t) => {
  const dir = tempDir(t)
  const script = `
    import { createRequire } from 'node:module'
    import Fastify from 'fastify'
    import tus from ${JSON.stringify(join(process.cwd(), 'dist/lib/index.js'))}
    const app = Fastify()
    await app.register(tus, { uploadDir: ${JSON.stringify(join(dir, 'uploads'))}, db: ${JSON.stringify(join(dir, 'uploads.db'))} })
    await app.ready()
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => /[\\\\/]node_modules[\\\\/]pg[\\\\/]/.test(p))
    await app.close()
    process.stdout.write(JSON.stringify(loaded))`
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd() })
  t.equal(run.status, 0, run.stderr)
  t.same(JSON.parse(run.stdout || 'null'), [], 'no module of pg in the require cache')
})

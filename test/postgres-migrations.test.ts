/**
 * The migrations on PostgreSQL: several instances migrating one new schema at
 * once; schemas in one database kept apart (each gets its own tables, even
 * when another schema has them already); the schema given in the connection
 * string; and a caller's Kysely instance (PostgresDialect) used as is.
 */
import t from 'tap'
import { join } from 'node:path'
import Fastify from 'fastify'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import tus, { migrate } from '../lib/index.js'
import { openDatabase } from '../lib/store/meta/dialects.js'
import { startServer, tempDir } from './helpers/server.js'
import { TUS, create, send } from './helpers/http.js'
import { idOf } from './helpers/tus.js'
import { postgresOrSkip, query, testSchema } from './helpers/postgres.js'

const url = postgresOrSkip(t)

const tablesOf = async (schema: string): Promise<string[]> =>
  (await query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema])).map((r) => r.table_name)

if (url !== undefined) {
  t.test('six instances migrate one new schema at the same moment', async (t) => {
    const schema = testSchema(t)
    const opened = await Promise.all(Array.from({ length: 6 }, async () => openDatabase(url, { schema, poolSize: 2 })))
    t.teardown(async () => { await Promise.all(opened.map(async ({ db }) => db.destroy())) })
    await Promise.all(opened.map(async ({ db }) => migrate(db)))
    t.same(await tablesOf(schema), ['fastify_tus_migration', 'fastify_tus_migration_lock', 'tus_instances', 'tus_locks', 'tus_object_parts', 'tus_object_states', 'tus_uploads'])
    const migrations = await query<{ name: string }>('SELECT name FROM fastify_tus_migration ORDER BY name', [], schema)
    t.equal(migrations.length, 5, `each migration recorded once (${migrations.map((m) => m.name).join(', ')})`)
    await migrate(opened[0]!.db)
    t.equal((await query('SELECT name FROM fastify_tus_migration', [], schema)).length, 5, 'running again is a no-op')
  })

  t.test('two schemas in one database: each has its own tables and uploads', async (t) => {
    const [first, second] = [testSchema(t), testSchema(t)]
    const a = await startServer(t, { db: url, schema: first })
    const upload = await create(a.endpoint, { 'Upload-Length': '4' })
    // The second schema is migrated while the first already has every table.
    const b = await startServer(t, { db: url, schema: second })
    t.same(await tablesOf(second), await tablesOf(first), 'the second schema got its own tables')
    t.same(await b.app.tus.list(), [], 'the second schema sees none of the first one\'s uploads')
    t.equal((await send('HEAD', `${b.endpoint}/${idOf(upload)}`, { headers: TUS })).status, 404)
    t.equal((await a.app.tus.list()).length, 1)
  })

  t.test('the schema can be given in the connection string', async (t) => {
    const schema = testSchema(t)
    await query(`CREATE SCHEMA "${schema}"`)
    const withPath = `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`
    const server = await startServer(t, { db: withPath })
    const upload = await create(server.endpoint, { 'Upload-Length': '2' })
    const rows = await query<{ id: string }>('SELECT id FROM tus_uploads', [], schema)
    t.same(rows.map((r) => r.id), [idOf(upload)], 'the row is in that schema')
  })

  t.test('a ready Kysely instance on PostgreSQL is used as is and left open', async (t) => {
    const schema = testSchema(t)
    await query(`CREATE SCHEMA "${schema}"`)
    const pool = new pg.Pool({ connectionString: url, max: 3, options: `-c search_path=${schema}` })
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
    t.teardown(async () => db.destroy())
    const app = Fastify({ logger: false })
    await app.register(tus, { uploadDir: join(tempDir(t), 'uploads'), db })
    const origin = await app.listen({ host: '127.0.0.1', port: 0 })
    const upload = await create(`${origin}/files`, { 'Upload-Length': '3' })
    // A streaming PATCH holds a database lock: the PostgreSQL default.
    let locks = -1
    await send('PATCH', upload, {
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': '3' },
      stream: (req) => {
        req.write('ab')
        setTimeout(() => {
          db.selectFrom('tus_locks').selectAll().execute()
            .then((rows) => { locks = rows.length }, () => { locks = -2 })
            .finally(() => req.end('c'))
        }, 200)
      }
    })
    t.equal(locks, 1, 'the upload was locked in the database while written')
    await app.close()
    const row = await db.selectFrom('tus_uploads').selectAll().where('id', '=', idOf(upload)).executeTakeFirst()
    t.equal(Number(row?.upload_offset), 3, 'the instance is still open after the app closed, and holds the upload')
  })
}

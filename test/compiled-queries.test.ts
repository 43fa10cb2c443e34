/**
 * The repository's hot queries are compiled once per shape and run with new
 * values: the same rows as building each query anew, on a real SQLite file;
 * never reused where reuse could be wrong (plugins, a value not a parameter of its own).
 */
import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql, type KyselyPlugin } from 'kysely'
import { CompiledQueries } from '../lib/store/meta/compiled-queries.js'
import { KyselyUploadRepository } from '../lib/store/meta/uploads.js'
import { migrate } from '../lib/store/meta/migrations.js'
import { tempDir } from './helpers/server.js'

interface Db { items: { id: string, n: number, note: string | null } }

function open (t: { teardown (fn: () => unknown): void }, plugins: KyselyPlugin[] = []): Kysely<Db> {
  const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: new Database(join(tempDir(t), 'q.db')) }), plugins })
  t.teardown(() => db.destroy())
  return db
}

async function createTable (db: Kysely<Db>): Promise<void> {
  await db.schema.createTable('items').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('n', 'integer').addColumn('note', 'text').execute()
}

t.test('one shape is built once and runs with each call\'s values, nulls included', async (t) => {
  const db = open(t)
  await createTable(db)
  const queries = new CompiledQueries(db)
  let builds = 0
  const insert = async (id: string, n: number, note: string | null): Promise<void> => {
    await queries.run('insert', [id, n, note], (v) => { builds++; return db.insertInto('items').values({ id: v[0] as string, n: v[1] as number, note: v[2] as string | null }) })
  }
  await insert('a', 1, 'first')
  await insert('b', 2, null)
  await insert('c', 3, 'third')
  t.equal(builds, 1, 'built once, with placeholders')
  const bump = async (id: string, from: number, to: number): Promise<bigint | undefined> => (await queries.run('bump', [to, id, from], (v) =>
    db.updateTable('items').set({ n: v[0] as number }).where('id', '=', v[1] as string).where('n', '=', v[2] as number))).numAffectedRows
  t.equal(await bump('b', 2, 20), 1n, 'a compare-and-set that matches updates one row')
  t.equal(await bump('b', 2, 30), 0n, 'the same statement with a stale value updates none')
  const get = async (id: string): Promise<unknown> => (await queries.run('get', [id], (v) => db.selectFrom('items').selectAll().where('id', '=', v[0] as string))).rows[0]
  t.same(await get('a'), { id: 'a', n: 1, note: 'first' })
  t.same(await get('b'), { id: 'b', n: 20, note: null })
  t.equal(await get('zz'), undefined)
  t.same(await db.selectFrom('items').selectAll().orderBy('id').execute(), [
    { id: 'a', n: 1, note: 'first' }, { id: 'b', n: 20, note: null }, { id: 'c', n: 3, note: 'third' }
  ], 'the table holds what plain Kysely queries read back')
})

t.test('a Kysely instance with plugins gets each query built anew (a plugin may key its work on the query)', async (t) => {
  let transformed = 0
  const counting: KyselyPlugin = {
    transformQuery: (args) => { transformed++; return args.node },
    transformResult: async (args) => args.result
  }
  const db = open(t, [counting])
  await createTable(db)
  const queries = new CompiledQueries(db)
  let builds = 0
  for (const id of ['a', 'b', 'c']) await queries.run('insert', [id, 1, null], (v) => { builds++; return db.insertInto('items').values({ id: v[0] as string, n: v[1] as number, note: v[2] as string | null }) })
  t.equal(builds, 3)
  t.ok(transformed >= 3, 'the plugin saw every query')
  t.equal((await db.selectFrom('items').select('id').execute()).length, 3)
})

t.test('a value that does not come out as a parameter of its own is never reused', async (t) => {
  const db = open(t)
  await createTable(db)
  const queries = new CompiledQueries(db)
  let builds = 0
  // The same value twice: its placeholder appears twice among the parameters.
  const twice = async (id: string): Promise<void> => {
    await queries.run('twice', [id], (v) => { builds++; return db.insertInto('items').values({ id: v[0] as string, n: 1, note: v[0] as string }) })
  }
  // A value inlined into the SQL text: no parameter at all.
  const inlined = async (id: string): Promise<unknown> => (await queries.run('inlined', [id], (v) => { builds++; return db.selectFrom('items').select('note').where('id', '=', sql.lit(v[0] as string)) })).rows[0]
  await twice('x')
  await twice('y')
  t.equal(builds, 3, 'one try with placeholders, then built with the values each time')
  t.same(await inlined('y'), { note: 'y' })
  t.same(await inlined('x'), { note: 'x' })
})

t.test('the repository\'s per-request queries (insert, get, advanceOffset) compile nothing once each shape was seen', async (t) => {
  const db = open(t) as unknown as Kysely<any>
  await migrate(db)
  const repository = new KyselyUploadRepository(db)
  const executor = db.getExecutor()
  let compiles = 0
  const compile = executor.compileQuery.bind(executor)
  executor.compileQuery = (...args: Parameters<typeof compile>) => { compiles++; return compile(...args) }
  const round = async (id: string): Promise<void> => {
    await repository.insert({ id, length: 10, metadata: { name: id }, concat: null, parts: null, expiresAt: new Date(Date.now() + 60_000) })
    t.equal((await repository.get(id))?.offset, 0)
    t.ok(await repository.advanceOffset(id, 0, 4, { expiresAt: new Date(Date.now() + 60_000), complete: false }))
    t.notOk(await repository.advanceOffset(id, 0, 8, { expiresAt: null, complete: false }), 'a stale offset moves nothing')
    t.ok(await repository.advanceOffset(id, 4, 10, { expiresAt: null, complete: true }))
    const done = await repository.get(id)
    t.equal(done?.offset, 10)
    t.ok(done?.completedAt instanceof Date, 'completion recorded by the same update')
    t.same(done?.metadata, { name: id })
  }
  await round('first')
  const warm = compiles
  t.ok(warm > 0, 'the first round compiled each shape')
  await round('second')
  await round('third')
  t.equal(compiles, warm, 'later rounds reuse the compiled queries')
})

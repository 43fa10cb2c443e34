/**
 * On PostgreSQL the plugin's queries run as named prepared statements, parsed once
 * per connection; behind a pooler that loses them (PgBouncer in transaction mode)
 * the first failure turns naming off and the query still answers. Statements in a
 * transaction are never named. On the real PostgreSQL of TUS_TEST_POSTGRES_URL.
 */
import t, { type Test } from 'tap'
import pg from 'pg'
import { Kysely, PostgresDialect, sql } from 'kysely'
import { namingStatements, StatementNames } from '../lib/store/meta/postgres-statements.js'
import { postgresOrSkip } from './helpers/postgres.js'

const url = postgresOrSkip(t)

/** One connection, so the test sees the session the statements were prepared in. */
function open (t: Test): { pool: pg.Pool, db: Kysely<any>, names: StatementNames } {
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  const names = new StatementNames()
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: namingStatements(pool, names) }) })
  t.teardown(() => db.destroy())
  return { pool, db, names }
}

/** The statements prepared in the pool's one session, asked unnamed (through pg itself). */
const prepared = async (pool: pg.Pool): Promise<string[]> =>
  (await pool.query<{ name: string }>('select name from pg_prepared_statements order by name')).rows.map((r) => r.name)

const answer = async (db: Kysely<any>, n: number): Promise<number> =>
  Number((await sql<{ n: number }>`select ${n}::int + 1 as n`.execute(db)).rows[0]!.n)

t.test('a query text is prepared once under a name and runs with each call\'s values', async (t) => {
  const { pool, db } = open(t)
  t.equal(await answer(db, 1), 2)
  t.equal(await answer(db, 41), 42)
  const names = await prepared(pool)
  t.ok(names.includes('fastify_tus_0'), 'the session holds the named statement')
  t.equal(names.filter((n) => n === 'fastify_tus_0').length, 1)
})

t.test('a pooler that lost the statement: the query is sent again unnamed, and naming stops', async (t) => {
  const { pool, db, names } = open(t)
  t.equal(await answer(db, 1), 2)
  // What a pooler in transaction mode does to a client: the next server connection never saw the name.
  await pool.query('DEALLOCATE ALL')
  t.equal(await answer(db, 2), 3, 'answered all the same')
  t.equal(names.naming, false, 'naming is off for this pool from now on')
  t.equal(await answer(db, 3), 4)
  t.same(await prepared(pool), [], 'nothing named since')
})

t.test('statements inside a transaction are not named', async (t) => {
  const { pool, db } = open(t)
  const inside = await db.transaction().execute(async (trx) => await answer(trx, 7))
  t.equal(inside, 8)
  t.same(await prepared(pool), [], 'no statement was prepared by the transaction')
  t.equal(await answer(db, 7), 8)
  t.same(await prepared(pool), ['fastify_tus_0'], 'the same text outside a transaction is named')
})

t.test('a failure that is not about the name is the query\'s own', async (t) => {
  const { db, names } = open(t)
  await t.rejects(sql`select 1 / ${0}::int as n`.execute(db), { code: '22012' }, 'division by zero, as PostgreSQL said it')
  t.equal(names.naming, true)
})

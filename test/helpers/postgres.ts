/**
 * PostgreSQL for tests. The server is named by TUS_TEST_POSTGRES_URL (`.ci/run`
 * sets it); without it, PostgreSQL tests are skipped with one line saying so.
 * TUS_TEST_BACKEND=postgres makes startServer() run the plugin on PostgreSQL.
 * Every server or test gets a schema of its own, dropped at its teardown.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

interface Teardown { teardown(fn: () => unknown): void }

export const POSTGRES_URL: string | undefined = process.env.TUS_TEST_POSTGRES_URL === '' ? undefined : process.env.TUS_TEST_POSTGRES_URL

export const SKIP_REASON = 'PostgreSQL tests skipped: TUS_TEST_POSTGRES_URL is not set'

/** The backend the protocol tests run on. */
export const BACKEND: 'sqlite' | 'postgres' = process.env.TUS_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite'
if (BACKEND === 'postgres' && POSTGRES_URL === undefined) {
  throw new Error('TUS_TEST_BACKEND=postgres needs TUS_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)')
}

/** The URL, or undefined after marking the whole test file skipped (one visible line). */
export function postgresOrSkip (t: { plan(n: number, reason?: string): void }): string | undefined {
  if (POSTGRES_URL === undefined) t.plan(0, SKIP_REASON)
  return POSTGRES_URL
}

export const newSchemaName = (): string => `tus_test_${process.pid}_${randomBytes(5).toString('hex')}`

/** Run one statement on the test server (in `schema` when given). */
export async function query<R extends Record<string, unknown> = Record<string, unknown>> (text: string, params: unknown[] = [], schema?: string): Promise<R[]> {
  if (POSTGRES_URL === undefined) throw new Error(SKIP_REASON)
  const client = new pg.Client({ connectionString: POSTGRES_URL, ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }) })
  await client.connect()
  try {
    return (await client.query<R>(text, params)).rows
  } finally {
    await client.end()
  }
}

export async function dropSchema (schema: string): Promise<void> {
  await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
}

/**
 * A fresh schema name whose schema is dropped at teardown. Register it before
 * anything that uses it (teardowns run last-registered first), so servers and
 * child processes are gone by the time it is dropped.
 */
export function testSchema (t: Teardown): string {
  const schema = newSchemaName()
  t.teardown(async () => dropSchema(schema))
  return schema
}

/**
 * A start that fails after the database is open gives back what it took: the
 * plugin's own pool is closed (it would keep the process alive and hold the
 * server's connections) and the metrics stop reading that database, so the
 * registry, which outlives the app, still answers scrapes.
 *
 * Caused for real: the reconciliation on start reads the uploads table as a
 * PostgreSQL role that may read the migration tables but not that one, so
 * migrations pass and the first read of uploads is refused.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import tus, { migrate } from '../lib/index.js'
import { openDatabase } from '../lib/store/meta/dialects.js'
import { tempDir } from './helpers/server.js'
import { waitFor } from './helpers/tus.js'
import { postgresOrSkip, query, testSchema } from './helpers/postgres.js'

const url = postgresOrSkip(t)

if (url !== undefined) {
  t.test('registration refused by the database on start: its pool closed, the shared registry still scrapes', async (t) => {
    const schema = testSchema(t)
    const { db } = await openDatabase(url, { schema })
    await migrate(db)
    await db.destroy()

    const role = `tus_test_role_${randomBytes(5).toString('hex')}`
    await query(`CREATE ROLE ${role} LOGIN`)
    t.teardown(async () => {
      await query(`DROP OWNED BY ${role}`)
      await query(`DROP ROLE ${role}`)
    })
    await query(`GRANT USAGE ON SCHEMA "${schema}" TO ${role}`)
    await query(`GRANT SELECT, INSERT, UPDATE ON "${schema}".fastify_tus_migration, "${schema}".fastify_tus_migration_lock TO ${role}`)
    const asRole = new URL(url)
    asRole.username = role
    const connections = async (): Promise<number> =>
      Number((await query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1', [role]))[0]!.n)

    const registry = new Registry()
    const app = Fastify()
    t.teardown(async () => app.close())
    void app.register(tus, { db: asRole.href, schema, uploadDir: tempDir(t), metrics: registry })
    await t.rejects(async () => app.ready(), /permission denied for table tus_uploads/, 'the start fails with the database\'s reason')

    await waitFor(async () => await connections() === 0, 3000, 'no connection of the role left')
    t.equal(await connections(), 0, 'the plugin\'s pool is closed')
    const text = await registry.metrics()
    t.match(text, /tus_complete_deliveries\{state="pending"\} 0/, 'the registry still scrapes, counting no database')
  })
}

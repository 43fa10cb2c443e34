// One instance of a tus service that runs as several processes on PostgreSQL:
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node examples/postgres/server.js
// Start as many as you like, each on its own PORT, with the same DATABASE_URL (and DB_SCHEMA)
// and the same UPLOAD_DIR: any of them can serve any request of any upload. cluster.js does
// that with one command, behind a round-robin proxy. Every reply says which instance sent it
// (X-Served-By).
// Env: DATABASE_URL (required), DB_SCHEMA (the connection's search_path, usually public),
// PORT (8080, 0 = any), HOST (127.0.0.1), UPLOAD_DIR (./uploads), INSTANCE_NAME (pid-<pid>).
import Fastify from 'fastify'
import tus from 'fastify-tus'

const databaseUrl = process.env.DATABASE_URL
if (databaseUrl === undefined || !/^postgres(ql)?:\/\//.test(databaseUrl)) {
  console.error('DATABASE_URL must be a PostgreSQL connection string, e.g. postgres://postgres@127.0.0.1:5432/postgres')
  process.exit(2)
}
const instance = process.env.INSTANCE_NAME ?? `pid-${process.pid}`

const app = Fastify({ logger: { base: { instance, pid: process.pid } } })
// Added before the plugin, so its routes (and error replies) get it too.
app.addHook('onSend', async (_request, reply) => { reply.header('X-Served-By', instance) })

await app.register(tus, {
  prefix: '/files',
  db: databaseUrl,
  schema: process.env.DB_SCHEMA || undefined,
  // The one directory every instance uses (on several machines: a shared volume).
  uploadDir: process.env.UPLOAD_DIR ?? './uploads',
  poolSize: 5
})
// Runs once per finished upload, on one of the instances (see the main README).
app.tus.addHook('onComplete', async ({ upload }) => {
  app.log.info({ id: upload.id, bytes: upload.length, metadata: upload.metadata }, 'upload finished')
})

// Stop cleanly: in-flight requests end, locks are released, the pool is closed.
let closing = false
const shutdown = (why) => {
  if (closing) return
  closing = true
  app.log.info(`${why}: shutting down`)
  const force = setTimeout(() => process.exit(1), 10_000)
  force.unref()
  app.close().then(() => process.exit(0), () => process.exit(1))
}
process.once('SIGTERM', () => shutdown('SIGTERM'))
process.once('SIGINT', () => shutdown('SIGINT'))
// Started by cluster.js (with an IPC channel): go when it goes, even if it was killed with SIGKILL.
if (process.send !== undefined) process.once('disconnect', () => shutdown('cluster gone'))

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080) })

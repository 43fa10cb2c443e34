/**
 * fastify-tus: a TUS 1.0.0 resumable-upload server as a Fastify plugin.
 *
 *   await app.register(tus, { prefix: '/files', uploadDir: './uploads' })
 *   app.tus.addHook('onComplete', async ({ upload }) => { ... })
 *
 * The plugin itself is not encapsulated (so `app.tus` reaches the host app);
 * the routes, their body parser, error format and CORS live in a child scope.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRegisterOptions } from 'fastify'
import type { DataStore, TusMetricsRegistry, TusPluginOptions } from '../types/index.js'
import { resolveOptions, type ResolvedOptions } from './options.js'
import type { Kysely } from './store/meta/kysely.js'
import type { TusDatabase } from './store/meta/schema.js'
import { ObjectStates } from './store/meta/object-states.js'
import { openS3Store } from './store/data/s3-bucket.js'
import { openAzureStore } from './store/data/azure-bucket.js'
import { FileStore } from './store/data/file-store.js'
import { openDatabase } from './store/meta/dialects.js'
import { migrate } from './store/meta/migrations.js'
import { KyselyUploadRepository } from './store/meta/uploads.js'
import { MemoryLocker } from './locks/memory-locker.js'
import { DatabaseLocker } from './locks/database-locker.js'
import { LayeredLocker } from './locks/layered-locker.js'
import { HookRegistry } from './hooks/registry.js'
import { CompletionDelivery } from './hooks/completion.js'
import { tusRoutes } from './protocol/routes.js'
import type { TusContext } from './protocol/context.js'
import { createDecorator } from './decorator.js'
import { scheduleCleanup } from './expiry.js'
import { reconcile } from './recovery.js'
import { Drain } from './drain.js'
import { Events } from './observe/events.js'
import { installMetrics, type InstalledMetrics } from './observe/metrics.js'
import { STORE_OPERATIONS, instrumentStore } from './observe/instrumented-store.js'
import { HOOK_NAMES } from './hooks/registry.js'

/**
 * Files in uploadDir, or objects in an S3 bucket or an Azure container (each
 * loads its service's SDK only then), with the name metrics give it.
 */
async function openStore (options: ResolvedOptions, db: Kysely<TusDatabase>): Promise<{ store: DataStore; name: string }> {
  if (options.s3 !== undefined) return { store: await openS3Store(options.s3, new ObjectStates(db)), name: 's3' }
  if (options.azure !== undefined) return { store: await openAzureStore(options.azure, new ObjectStates(db)), name: 'azure' }
  const files = new FileStore(options.uploadDir)
  await files.init()
  return { store: files, name: 'file' }
}

/** The registry `metrics` names: the one given, or fastify-metrics' with `true`. */
function metricsRegistry (app: FastifyInstance, option: TusMetricsRegistry | true): TusMetricsRegistry {
  if (option !== true) return option
  const registry = (app as unknown as { metrics?: { client?: { register?: TusMetricsRegistry } } }).metrics?.client?.register
  if (registry === undefined) throw new TypeError('fastify-tus: option metrics: true needs fastify-metrics registered before this plugin; or pass a prom-client Registry')
  return registry
}

async function fastifyTus (app: FastifyInstance, input: TusPluginOptions): Promise<void> {
  const options = resolveOptions(input)

  // Events are published on process-wide channels; this object tells this instance's apart.
  const events = new Events({ prefix: options.prefix })
  const hooks = new HookRegistry(events, app.log)
  for (const name of HOOK_NAMES) {
    const value = input[name]
    for (const handler of value === undefined ? [] : Array.isArray(value) ? value : [value]) hooks.add(name, handler as never)
  }

  const { db, owned, kind, identity } = await openDatabase(options.db, {
    poolSize: options.poolSize,
    schema: options.schema,
    onPoolError: (err) => app.log.warn({ err }, 'fastify-tus: a pooled database connection failed')
  })
  // Until the onClose hook below is in place, a failed start gives back what it took:
  // an open pool would keep the process alive, and the metrics would read a closed database.
  let metrics: InstalledMetrics | undefined
  const giveBack = async (): Promise<void> => {
    metrics?.close()
    if (owned) await db.destroy()
  }
  let store: DataStore
  let storeName: string
  try {
    await migrate(db)
    const opened = await openStore(options, db)
    store = instrumentStore(opened.store, opened.name, events)
    storeName = opened.name
  } catch (err) {
    await giveBack()
    throw err
  }

  // Several instances on one database need the lock there; one process on
  // SQLite keeps it in memory.
  const lockMode = options.locker === 'auto' ? (kind === 'postgres' ? 'database' : 'memory') : options.locker
  if (lockMode === 'database' && kind === 'other') {
    await giveBack()
    throw new TypeError("fastify-tus: option locker 'database' needs PostgreSQL or SQLite")
  }
  const sharedLocker = lockMode === 'database' ? new DatabaseLocker(db, { lease: options.lockLease, instanceTimeout: options.instanceTimeout, log: app.log }) : undefined
  const locker = sharedLocker === undefined ? new MemoryLocker() : new LayeredLocker(new MemoryLocker(), sharedLocker)

  const uploads = new KyselyUploadRepository(db, { owesCompleteHook: () => hooks.has('onComplete') })
  const completion = new CompletionDelivery(uploads, hooks, {
    attempts: options.completeHookAttempts,
    lease: options.completeHookLease,
    retryInterval: options.completeHookRetryInterval
  }, app.log)
  const drain = new Drain(options.shutdownTimeout, app.log)
  const ctx: TusContext = { options, store, uploads, locker, hooks, completion, log: app.log, drain, events }
  try {
    if (options.metrics !== undefined) {
      ctx.metrics = metrics = installMetrics(metricsRegistry(app, options.metrics), events.source, {
        store: { name: storeName, operations: STORE_OPERATIONS },
        deliveries: async () => uploads.countCompleteHooks(),
        database: identity
      })
    }
    if (options.recoverOnStart) {
      const report = await reconcile(ctx)
      if (Object.values(report).some((n) => n > 0)) app.log.warn({ report }, 'fastify-tus: reconciled storage with the table after an unclean stop')
    }
  } catch (err) {
    await giveBack()
    throw err
  }

  app.decorate('tus', createDecorator(ctx))
  let stopCleanup = (): void => {}
  // Timers start once the app is ready, so handlers added with app.tus.addHook
  // after register are in place before owed onComplete runs are taken up.
  app.addHook('onReady', async () => {
    stopCleanup = scheduleCleanup(ctx, options.cleanupInterval)
    completion.start()
    sharedLocker?.start()
  })
  // Graceful shutdown (see lib/drain.ts): from the start of app.close(), new
  // requests get 503 and bodies in flight have until shutdownTimeout; then the
  // server's close completes, and locks and onComplete runs are given back.
  app.addHook('preClose', async () => {
    stopCleanup()
    completion.stop()
    drain.begin(() => { app.server.closeAllConnections() })
  })
  app.addHook('onClose', async () => {
    stopCleanup()
    ctx.metrics?.close()
    drain.end()
    await completion.close(drain.remaining())
    await sharedLocker?.close()
    if (owned) await db.destroy()
  })

  // Fastify's own register options: fastify-plugin shares the host's scope, where
  // they would do nothing, so the routes' scope takes them.
  const { logLevel, logSerializers } = input as { logLevel?: unknown; logSerializers?: unknown }
  await app.register(async (scope) => tusRoutes(scope, ctx), {
    prefix: options.prefix,
    ...(logLevel === undefined ? {} : { logLevel }),
    ...(logSerializers === undefined ? {} : { logSerializers })
  } as FastifyRegisterOptions<unknown>)
}

export const tus = fp(fastifyTus, { fastify: '5.x', name: 'fastify-tus' })
export default tus

export { TusError } from './protocol/errors.js'
export { CHANNEL_NAMES } from './observe/events.js'
export { tusFrameworkErrors } from './protocol/framework-errors.js'
export { tusServerOptions } from './protocol/server-options.js'
export { tusClientErrorHandler } from './protocol/client-errors.js'
export { FileStore } from './store/data/file-store.js'
export { KyselyUploadRepository } from './store/meta/uploads.js'
export { MemoryLocker } from './locks/memory-locker.js'
export { DatabaseLocker } from './locks/database-locker.js'
export { LayeredLocker } from './locks/layered-locker.js'
export { migrate } from './store/meta/migrations.js'
export type * from '../types/index.js'

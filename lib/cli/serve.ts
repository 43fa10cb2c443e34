/** `fastify-tus serve`: a tus server with no code, on SQLite (or PostgreSQL) and a directory, S3 or Azure. */
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import type { ChecksumAlgorithm, TusPluginOptions } from '../../types/index.js'
import tus, { tusServerOptions } from '../index.js'
import { isPostgresUrl } from '../store/meta/dialects.js'
import { MetricsRegistry } from '../observe/prometheus.js'

export const SERVE_HELP = `Usage: fastify-tus serve [options]

Runs a TUS 1.0.0 upload server (metadata in SQLite or PostgreSQL, bytes in a directory
or in object storage: S3-compatible or Azure Blob Storage). Several instances can serve
the same uploads: give them one --db postgres://... and one --s3-bucket or --azure-container
(or one --upload-dir they all reach).

Options:
  --host <host>                   address to listen on (default 127.0.0.1)
  --port <port>                   port to listen on (default 8080)
  --base-path <path>              URL path of the upload endpoint (default /files)
  --upload-dir <dir>              where uploaded bytes are stored (default ./uploads; unused with
                                  --s3-bucket or --azure-container)
  --s3-bucket <name>              store the bytes in this S3 bucket instead (credentials: AWS_ACCESS_KEY_ID /
                                  AWS_SECRET_ACCESS_KEY, profiles, instance roles); needs @aws-sdk/client-s3
  --s3-prefix <prefix>            key prefix, '' or ending with '/' (default '')
  --s3-endpoint <url>             an S3-compatible server (path-style addressing); default AWS
  --s3-region <region>            default AWS_REGION, else us-east-1
  --s3-part-size <bytes>          size of every part but the last, 5 MiB to 5 GiB (default 8388608)
  --azure-container <name>        store the bytes in this Azure Blob Storage container instead (connection
                                  string: AZURE_STORAGE_CONNECTION_STRING); needs @azure/storage-blob
  --azure-prefix <prefix>         blob name prefix, '' or ending with '/' (default '')
  --azure-block-size <bytes>      size of every block but the last, up to 4000 MiB (default 8388608)
  --db-path <file>                SQLite metadata database (default ./uploads.db)
  --db <url|file>                 metadata database: a PostgreSQL connection string
                                  (postgres://user@host:5432/db) or a SQLite file
  --db-schema <name>              PostgreSQL schema for the tables (created if missing; default public)
  --db-pool-size <n>              PostgreSQL connections per instance (default 10)
  --lock-lease <seconds>          with PostgreSQL: an upload lock not renewed is given up after this long (default 10)
  --instance-timeout <seconds>    with PostgreSQL: the locks of an instance whose heartbeat stopped
                                  (it died) are given up after this long (default 3)
  --shutdown-timeout <seconds>    on SIGTERM/SIGINT: requests in flight may finish for this long;
                                  uploads still streaming then are cut, their bytes kept (default 10)
  --lame-duck <seconds>           on SIGTERM/SIGINT, before shutting down: GET /health answers 503 for
                                  this long while everything else is served as usual, so a balancer
                                  that only polls health stops sending first (default 0)
  --max-size <bytes>              largest upload accepted (default: no limit)
  --max-chunk-size <bytes>        largest body of one request (default: no limit)
  --upload-expiry <seconds>       unfinished uploads expire after this long without writes (default: never)
  --cors-origin <origin>          allowed CORS origin, repeatable (default: any)
  --checksum-algorithms <list>    comma-separated, from sha1,sha256,sha512,md5 (default: all four)
  --idle-timeout <seconds>        close a connection that sends nothing for this long (default 60)
  --trust-proxy                   honour X-Forwarded-Proto/Host for the Location header
  --metrics                       serve Prometheus metrics at GET /metrics
  --log-level <level>             fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help                      show this help
`

export class UsageError extends Error {}

function integer (value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`${flag} must be a non-negative integer, got "${value}"`)
  return Number(value)
}

export interface ServeConfig {
  host: string
  port: number
  idleTimeout: number
  trustProxy: boolean
  logLevel: string
  /** Serve GET /metrics. */
  metrics: boolean
  /** On the first signal: ms during which GET /health fails while everything else is served, before the shutdown. */
  lameDuck: number
  plugin: TusPluginOptions
}

/** The flags `fastify-tus serve` accepts (node:util parseArgs options); exported for the docs test. */
export const SERVE_FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  'base-path': { type: 'string' },
  'upload-dir': { type: 'string' },
  's3-bucket': { type: 'string' },
  's3-prefix': { type: 'string' },
  's3-endpoint': { type: 'string' },
  's3-region': { type: 'string' },
  's3-part-size': { type: 'string' },
  'azure-container': { type: 'string' },
  'azure-prefix': { type: 'string' },
  'azure-block-size': { type: 'string' },
  'db-path': { type: 'string' },
  db: { type: 'string' },
  'db-schema': { type: 'string' },
  'db-pool-size': { type: 'string' },
  'lock-lease': { type: 'string' },
  'instance-timeout': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'lame-duck': { type: 'string' },
  'max-size': { type: 'string' },
  'max-chunk-size': { type: 'string' },
  'upload-expiry': { type: 'string' },
  'cors-origin': { type: 'string', multiple: true },
  'checksum-algorithms': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'trust-proxy': { type: 'boolean' },
  metrics: { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

export function parseServeArgs (argv: string[]): ServeConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: SERVE_FLAGS
  })
  if (values.help === true) return 'help'
  const port = integer(values.port, '--port', 8080)
  if (port > 65535) throw new UsageError('--port must be at most 65535')
  const logLevel = values['log-level'] ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new UsageError(`--log-level "${logLevel}" is not a level`)
  if (values.db !== undefined && values['db-path'] !== undefined) throw new UsageError('give either --db or --db-path, not both')
  const db = values.db ?? values['db-path'] ?? './uploads.db'
  if (db === '') throw new UsageError('--db must not be empty')
  const postgres = isPostgresUrl(db)
  for (const flag of ['db-schema', 'db-pool-size', 'lock-lease', 'instance-timeout'] as const) {
    if (values[flag] !== undefined && !postgres) throw new UsageError(`--${flag} needs --db postgres://...`)
  }
  const schema = values['db-schema']
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new UsageError(`--db-schema "${schema}" is not a plain identifier`)
  const poolSize = values['db-pool-size'] === undefined ? undefined : integer(values['db-pool-size'], '--db-pool-size', 10)
  if (poolSize === 0) throw new UsageError('--db-pool-size must be at least 1')
  const lockLease = values['lock-lease'] === undefined ? undefined : integer(values['lock-lease'], '--lock-lease', 10) * 1000
  if (lockLease === 0) throw new UsageError('--lock-lease must be at least 1')
  const instanceTimeout = values['instance-timeout'] === undefined ? undefined : integer(values['instance-timeout'], '--instance-timeout', 3) * 1000
  if (instanceTimeout === 0) throw new UsageError('--instance-timeout must be at least 1')
  const bucket = values['s3-bucket']
  for (const flag of ['s3-prefix', 's3-endpoint', 's3-region', 's3-part-size'] as const) {
    if (values[flag] !== undefined && bucket === undefined) throw new UsageError(`--${flag} needs --s3-bucket`)
  }
  const s3 = bucket === undefined
    ? undefined
    : {
        bucket,
        ...(values['s3-prefix'] === undefined ? {} : { prefix: values['s3-prefix'] }),
        ...(values['s3-endpoint'] === undefined ? {} : { endpoint: values['s3-endpoint'] }),
        ...(values['s3-region'] === undefined ? {} : { region: values['s3-region'] }),
        ...(values['s3-part-size'] === undefined ? {} : { partSize: integer(values['s3-part-size'], '--s3-part-size', 0) })
      }
  const container = values['azure-container']
  for (const flag of ['azure-prefix', 'azure-block-size'] as const) {
    if (values[flag] !== undefined && container === undefined) throw new UsageError(`--${flag} needs --azure-container`)
  }
  if (container !== undefined && bucket !== undefined) throw new UsageError('give either --s3-bucket or --azure-container, not both')
  const azure = container === undefined
    ? undefined
    : {
        container,
        ...(values['azure-prefix'] === undefined ? {} : { prefix: values['azure-prefix'] }),
        ...(values['azure-block-size'] === undefined ? {} : { blockSize: integer(values['azure-block-size'], '--azure-block-size', 0) })
      }
  const algorithms = values['checksum-algorithms']
  const origins = values['cors-origin']
  return {
    host: values.host ?? '127.0.0.1',
    port,
    idleTimeout: integer(values['idle-timeout'], '--idle-timeout', 60),
    trustProxy: values['trust-proxy'] ?? false,
    metrics: values.metrics ?? false,
    lameDuck: integer(values['lame-duck'], '--lame-duck', 0) * 1000,
    logLevel,
    plugin: {
      prefix: values['base-path'] ?? '/files',
      uploadDir: values['upload-dir'] ?? './uploads',
      ...(s3 === undefined ? {} : { s3 }),
      ...(azure === undefined ? {} : { azure }),
      db,
      ...(schema === undefined ? {} : { schema }),
      ...(poolSize === undefined ? {} : { poolSize }),
      ...(lockLease === undefined ? {} : { lockLease }),
      ...(instanceTimeout === undefined ? {} : { instanceTimeout }),
      shutdownTimeout: integer(values['shutdown-timeout'], '--shutdown-timeout', 10) * 1000,
      maxSize: integer(values['max-size'], '--max-size', 0),
      maxChunkSize: integer(values['max-chunk-size'], '--max-chunk-size', 0),
      expiration: integer(values['upload-expiry'], '--upload-expiry', 0) * 1000,
      checksumAlgorithms: algorithms === undefined ? undefined : algorithms.split(',').map((a) => a.trim().toLowerCase()).filter(Boolean) as ChecksumAlgorithm[],
      cors: origins === undefined ? {} : { origin: origins.length === 1 ? origins[0] : origins }
    }
  }
}

/** Servers in their lame-duck period: the health check fails, everything else is served. */
const leaving = new WeakSet<FastifyInstance>()

export async function buildServer (config: ServeConfig): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel },
    trustProxy: config.trustProxy,
    // Uploads may take hours, so there is no limit on a whole request; a
    // connection that goes quiet, or trickles its headers, is cut instead.
    requestTimeout: 0,
    connectionTimeout: config.idleTimeout * 1000,
    keepAliveTimeout: 10_000,
    // The router's and Node's parser's refusals, and 503s while shutting down, in the plugin's format.
    ...tusServerOptions
  })
  app.server.headersTimeout = 20_000
  // A registry of its own (the plugin's metrics only, no prom-client), served beside the uploads, outside their prefix.
  const registry = config.metrics ? new MetricsRegistry() : undefined
  await app.register(tus, registry === undefined ? config.plugin : { ...config.plugin, metrics: registry })
  if (registry !== undefined) {
    app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => reply.type(registry.contentType).send(await registry.text()))
  }
  // For load balancers: 200 while serving, 503 from the moment a shutdown (or its lame-duck period) begins.
  app.get('/health', { logLevel: 'warn' }, async (_request, reply) => {
    if (leaving.has(app) || app.tus.draining) return reply.code(503).header('Connection', 'close').type('text/plain; charset=utf-8').send('shutting down')
    return reply.type('text/plain; charset=utf-8').send('ok')
  })
  return app
}

export async function serve (argv: string[]): Promise<void> {
  const config = parseServeArgs(argv)
  if (config === 'help') {
    process.stdout.write(SERVE_HELP)
    return
  }
  const app = await buildServer(config)
  // The first signal shuts down gracefully (see --shutdown-timeout); a second one exits at once.
  let stopping = false
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.log.warn(`fastify-tus: ${signal} again: exiting without waiting`)
      process.exit(1)
    }
    stopping = true
    if (config.lameDuck > 0) {
      // The listener stays open: a balancer that has not polled the health check yet still sends
      // here, and is answered. Closing it now would reset connections still in its accept queue.
      leaving.add(app)
      app.log.info(`fastify-tus: ${signal}: health check failing, still serving for ${config.lameDuck / 1000} s (--lame-duck)`)
    }
    delay(config.lameDuck).then(async () => {
      app.log.info(`fastify-tus: ${signal}: shutting down`)
      await app.close()
    }).then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'fastify-tus: shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
  const address = await app.listen({ host: config.host, port: config.port })
  // Printed whatever the log level, so scripts (and people) learn the address.
  process.stdout.write(`fastify-tus listening at ${address}${app.tus.prefix}/\n`)
}

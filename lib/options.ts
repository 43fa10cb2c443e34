/**
 * Plugin options: defaults and validation up front, so a typo fails at
 * register time with a message naming the option, not at the first upload.
 */
import type { ChecksumAlgorithm, TusCorsOptions, TusPluginOptions } from '../types/index.js'
import { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, type S3Options } from './store/data/s3-bucket.js'
import { MAX_BLOCKS, MAX_BLOCK_SIZE, type AzureOptions } from './store/data/azure-bucket.js'
import { ALL_CHECKSUM_ALGORITHMS } from './protocol/headers.js'
import { HOOK_NAMES } from './hooks/registry.js'
import { DRAFT_VERSIONS } from './protocol/draft/select.js'
import { isPostgresUrl, isSchemaName } from './store/meta/dialects.js'

export interface ResolvedOptions {
  prefix: string
  uploadDir: string
  /** Object storage instead of uploadDir, when configured. */
  s3: S3Options | undefined
  /** Or Azure Blob Storage. */
  azure: AzureOptions | undefined
  db: NonNullable<TusPluginOptions['db']>
  poolSize: number
  schema: string | undefined
  /** 'auto' until the database is open: then 'database' on PostgreSQL, 'memory' otherwise. */
  locker: 'auto' | 'memory' | 'database'
  lockLease: number
  instanceTimeout: number
  shutdownTimeout: number
  maxSize: number
  maxChunkSize: number
  maxMetadataSize: number
  expiration: number
  cleanupInterval: number
  checksumAlgorithms: ChecksumAlgorithm[]
  fsync: boolean
  cors: TusCorsOptions | false
  completeDelivery: 'wait' | 'background'
  completeHookAttempts: number
  completeHookLease: number
  completeHookRetryInterval: number
  recoverOnStart: boolean
  checkpointBytes: number
  progressInterval: number
  metrics: TusPluginOptions['metrics']
  /** Interop versions of the IETF draft served, ascending. */
  draftVersions: number[]
  draftInterimResponses: boolean
}

const fail = (message: string): never => { throw new TypeError(`fastify-tus: ${message}`) }

function nonNegativeInteger (options: Record<string, unknown>, name: string, fallback: number): number {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(`option ${name} must be a non-negative integer, got ${JSON.stringify(value)}`)
  return value as number
}

/**
 * Every key `resolveOptions` accepts; any other key fails at register time.
 * Exported read-only so that the docs test can compare it with docs/reference.md.
 */
export const PLUGIN_OPTION_NAMES = Object.freeze(['prefix', 'uploadDir', 's3', 'azure', 'db', 'poolSize', 'schema', 'locker', 'lockLease', 'instanceTimeout', 'shutdownTimeout', 'maxSize', 'maxChunkSize', 'maxMetadataSize', 'expiration', 'cleanupInterval',
  'checksumAlgorithms', 'fsync', 'cors', 'onCreate', 'onComplete', 'onTerminate', 'onProgress', 'onBeforeTerminate', 'onInterrupted', 'onLengthDeclared',
  'progressInterval', 'metrics', 'draftVersions', 'draftInterimResponses',
  'completeDelivery', 'completeHookAttempts', 'completeHookLease', 'completeHookRetryInterval', 'recoverOnStart', 'checkpointBytes',
  // Fastify's own register options travel in the same object.
  'logLevel', 'logSerializers'] as const)

/** An object store's key prefix: '' or ending with '/', not starting with one (S3 and Azure alike). */
function checkObjectPrefix (option: string, what: 'key' | 'name', prefix: unknown): void {
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.endsWith('/')) || prefix.startsWith('/') || prefix.length > 512) {
    fail(`option ${option} must be '' or a ${what} prefix ending with '/' (not starting with one), got ${JSON.stringify(prefix)}`)
  }
}

/** Options handed to a service's SDK client as they are: only their shape is checked. */
function checkClientOptions (option: string, value: unknown): void {
  if (value !== undefined && (value === null || typeof value !== 'object')) fail(`option ${option} must be an object`)
}

const S3_KEYS = new Set(['bucket', 'prefix', 'endpoint', 'region', 'partSize', 'clientOptions'])

/** The `s3` option, checked: every mistake is a register-time error naming the field. */
function resolveS3 (input: TusPluginOptions['s3']): S3Options | undefined {
  if (input === undefined) return undefined
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return fail('option s3 must be an object like { bucket: \'uploads\' }')
  for (const key of Object.keys(input)) if (!S3_KEYS.has(key)) fail(`unknown option "s3.${key}"`)
  const { bucket, prefix = '', endpoint, region, partSize = 8 << 20, clientOptions } = input
  if (typeof bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) fail(`option s3.bucket must be a bucket name (3-63 of a-z 0-9 . -), got ${JSON.stringify(bucket)}`)
  checkObjectPrefix('s3.prefix', 'key', prefix)
  if (endpoint !== undefined) {
    let url: URL | undefined
    try { url = new URL(endpoint) } catch { url = undefined }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) fail(`option s3.endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`)
  }
  if (region !== undefined && (typeof region !== 'string' || region === '')) fail('option s3.region must be a non-empty string')
  if (typeof partSize !== 'number' || !Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    fail(`option s3.partSize must be an integer from ${MIN_PART_SIZE} (5 MiB) to ${MAX_PART_SIZE} (5 GiB), got ${JSON.stringify(partSize)}`)
  }
  checkClientOptions('s3.clientOptions', clientOptions)
  return { bucket, prefix, ...(endpoint === undefined ? {} : { endpoint }), ...(region === undefined ? {} : { region }), partSize, ...(clientOptions === undefined ? {} : { clientOptions }) }
}

const AZURE_KEYS = new Set(['container', 'prefix', 'blockSize', 'connectionString', 'url', 'credential', 'clientOptions'])

/** The `azure` option, checked like `s3`. */
function resolveAzure (input: TusPluginOptions['azure']): AzureOptions | undefined {
  if (input === undefined) return undefined
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return fail('option azure must be an object like { container: \'uploads\' }')
  for (const key of Object.keys(input)) if (!AZURE_KEYS.has(key)) fail(`unknown option "azure.${key}"`)
  const { container, prefix = '', blockSize = 8 << 20, connectionString, url, credential, clientOptions } = input
  if (typeof container !== 'string' || !/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(container)) fail(`option azure.container must be a container name (3-63 of a-z 0-9 -, no '--'), got ${JSON.stringify(container)}`)
  checkObjectPrefix('azure.prefix', 'name', prefix)
  if (typeof blockSize !== 'number' || !Number.isSafeInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
    fail(`option azure.blockSize must be an integer from 1 to ${MAX_BLOCK_SIZE} (4000 MiB), got ${JSON.stringify(blockSize)}`)
  }
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString === '')) fail('option azure.connectionString must be a non-empty string')
  if (url !== undefined) {
    let parsed: URL | undefined
    try { parsed = new URL(url) } catch { parsed = undefined }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) fail(`option azure.url must be the account's http(s) URL, got ${JSON.stringify(url)}`)
    if (connectionString !== undefined) fail('option azure takes connectionString or url (with credential), not both')
  } else if (credential !== undefined) {
    fail('option azure.credential needs azure.url')
  }
  checkClientOptions('azure.clientOptions', clientOptions)
  return {
    container,
    prefix,
    blockSize,
    ...(connectionString === undefined ? {} : { connectionString }),
    ...(url === undefined ? {} : { url, credential }),
    ...(clientOptions === undefined ? {} : { clientOptions })
  }
}

export function resolveOptions (input: TusPluginOptions = {}): ResolvedOptions {
  const options = input as Record<string, unknown>
  const known = new Set<string>(PLUGIN_OPTION_NAMES)
  for (const key of Object.keys(options)) if (!known.has(key)) fail(`unknown option "${key}"`)

  const prefix = input.prefix ?? '/files'
  if (typeof prefix !== 'string' || !/^(\/[A-Za-z0-9._~-]+)*$/.test(prefix.replace(/\/$/, ''))) fail(`option prefix must be a path like "/files", got ${JSON.stringify(prefix)}`)
  const uploadDir = input.uploadDir ?? './uploads'
  if (typeof uploadDir !== 'string' || uploadDir === '') fail('option uploadDir must be a non-empty string')
  const s3 = resolveS3(input.s3)
  const azure = resolveAzure(input.azure)
  if (s3 !== undefined && azure !== undefined) fail('options s3 and azure cannot both be set: one store holds the bytes')
  const db = input.db ?? './uploads.db'
  if (typeof db !== 'string' && (db === null || typeof db !== 'object' || typeof (db as { selectFrom?: unknown }).selectFrom !== 'function')) {
    fail('option db must be a SQLite file path, a PostgreSQL connection string or a Kysely instance')
  }
  const poolSize = nonNegativeInteger(options, 'poolSize', 10)
  if (poolSize < 1) fail('option poolSize must be at least 1')
  if (input.poolSize !== undefined && !(typeof db === 'string' && isPostgresUrl(db))) fail('option poolSize applies to a PostgreSQL connection string only')
  const schema = input.schema
  if (schema !== undefined) {
    if (typeof schema !== 'string' || !isSchemaName(schema)) fail(`option schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters), got ${JSON.stringify(schema)}`)
    if (!(typeof db === 'string' && isPostgresUrl(db))) fail('option schema applies to a PostgreSQL connection string only')
  }
  const locker = input.locker ?? 'auto'
  if (locker !== 'auto' && locker !== 'memory' && locker !== 'database') fail(`option locker must be 'auto', 'memory' or 'database', got ${JSON.stringify(locker)}`)
  const lockLease = nonNegativeInteger(options, 'lockLease', 10_000)
  if (lockLease < 300) fail('option lockLease must be at least 300 ms')
  const instanceTimeout = nonNegativeInteger(options, 'instanceTimeout', 3000)
  if (instanceTimeout < 300) fail('option instanceTimeout must be at least 300 ms')

  // Object storage holds at most so many parts of one size: that is the largest upload.
  const parts = s3 !== undefined
    ? { size: s3.partSize, most: MAX_PARTS, name: 's3.partSize' }
    : azure !== undefined ? { size: azure.blockSize, most: MAX_BLOCKS, name: 'azure.blockSize' } : undefined
  const objectLimit = parts === undefined ? 0 : parts.size * parts.most
  let maxSize = nonNegativeInteger(options, 'maxSize', objectLimit)
  if (parts !== undefined) {
    if (maxSize === 0) maxSize = objectLimit
    if (maxSize > objectLimit) fail(`option maxSize ${maxSize} is more than ${parts.most} parts of ${parts.name} ${parts.size} can hold; raise ${parts.name} to at least ${Math.ceil(maxSize / parts.most)}`)
  }
  const expiration = nonNegativeInteger(options, 'expiration', 0)
  const checksumAlgorithms = input.checksumAlgorithms ?? [...ALL_CHECKSUM_ALGORITHMS]
  if (!Array.isArray(checksumAlgorithms)) fail('option checksumAlgorithms must be an array')
  for (const algorithm of checksumAlgorithms) {
    if (!ALL_CHECKSUM_ALGORITHMS.includes(algorithm)) fail(`option checksumAlgorithms: "${algorithm}" is not one of ${ALL_CHECKSUM_ALGORITHMS.join(', ')}`)
  }
  for (const flag of ['fsync', 'recoverOnStart', 'draftInterimResponses'] as const) {
    if (input[flag] !== undefined && typeof input[flag] !== 'boolean') fail(`option ${flag} must be a boolean`)
  }
  const cors = input.cors === undefined ? {} : input.cors
  if (cors !== false && (typeof cors !== 'object' || cors === null || Array.isArray(cors))) fail('option cors must be an object or false')
  for (const hook of HOOK_NAMES) {
    const value = input[hook]
    const handlers = value === undefined ? [] : Array.isArray(value) ? value : [value]
    if (handlers.some((h) => typeof h !== 'function')) fail(`option ${hook} must be a function or an array of functions`)
  }

  const progressInterval = nonNegativeInteger(options, 'progressInterval', 1000)
  if (progressInterval < 10) fail('option progressInterval must be at least 10 ms')
  const metrics = input.metrics
  if (metrics !== undefined && metrics !== true && (metrics === null || typeof metrics !== 'object' ||
    typeof (metrics as { registerMetric?: unknown }).registerMetric !== 'function' || typeof (metrics as { getSingleMetric?: unknown }).getSingleMetric !== 'function')) {
    fail('option metrics must be a prom-client Registry or true (the registry of fastify-metrics)')
  }

  const draftVersions = input.draftVersions ?? [...DRAFT_VERSIONS]
  if (!Array.isArray(draftVersions) || draftVersions.some((v) => !(DRAFT_VERSIONS as readonly unknown[]).includes(v))) {
    fail(`option draftVersions must list interop versions of the IETF draft from ${DRAFT_VERSIONS.join(', ')} ([] turns the draft off), got ${JSON.stringify(draftVersions)}`)
  }

  const completeDelivery = input.completeDelivery ?? 'wait'
  if (completeDelivery !== 'wait' && completeDelivery !== 'background') fail(`option completeDelivery must be 'wait' or 'background', got ${JSON.stringify(completeDelivery)}`)
  const completeHookAttempts = nonNegativeInteger(options, 'completeHookAttempts', 10)
  if (completeHookAttempts < 1) fail('option completeHookAttempts must be at least 1')
  const completeHookLease = nonNegativeInteger(options, 'completeHookLease', 30_000)
  if (completeHookLease < 100) fail('option completeHookLease must be at least 100 ms')

  return {
    prefix: prefix.replace(/\/$/, ''),
    uploadDir,
    s3,
    azure,
    db,
    poolSize,
    schema,
    locker,
    lockLease,
    instanceTimeout,
    shutdownTimeout: nonNegativeInteger(options, 'shutdownTimeout', 10_000),
    maxSize,
    maxChunkSize: nonNegativeInteger(options, 'maxChunkSize', 0),
    maxMetadataSize: nonNegativeInteger(options, 'maxMetadataSize', 4096),
    expiration,
    cleanupInterval: nonNegativeInteger(options, 'cleanupInterval', expiration === 0 ? 0 : Math.min(expiration, 3_600_000)),
    checksumAlgorithms: [...new Set(checksumAlgorithms)],
    fsync: input.fsync ?? true,
    cors,
    completeDelivery,
    completeHookAttempts,
    completeHookLease,
    completeHookRetryInterval: nonNegativeInteger(options, 'completeHookRetryInterval', 5000),
    recoverOnStart: input.recoverOnStart ?? true,
    checkpointBytes: nonNegativeInteger(options, 'checkpointBytes', 8 << 20),
    progressInterval,
    metrics,
    draftVersions: [...new Set(draftVersions)].sort((a, b) => a - b),
    draftInterimResponses: input.draftInterimResponses ?? true
  }
}

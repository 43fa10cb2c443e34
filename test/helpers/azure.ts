/**
 * Azure Blob Storage for tests: TUS_TEST_AZURE_CONNECTION_STRING when set (an
 * Azurite test/azure-pass.mjs started, or a real account), else one Azurite
 * (a dev dependency) started for this test process on a free port of
 * 127.0.0.1 with a temp workspace, stopped and removed at the end
 * (helpers/azurite.mjs). The Azure tests are skipped, with one line saying so,
 * only when the azurite package is not installed; an Azurite that is
 * installed but does not start is an error, so CI fails rather than skips.
 * Every test gets a container of its own, removed at teardown, and reads what
 * was stored straight from the container, not through the server.
 */
import { randomBytes } from 'node:crypto'
import { BlobServiceClient } from '@azure/storage-blob'
import type { TusAzureOptions } from '../../lib/index.js'
import { azuriteInstalled, startAzurite } from './azurite.mjs'

interface Teardown { teardown(fn: () => unknown): void }

export const AZURITE_SKIP_REASON = 'Azure tests skipped: the azurite package is not installed (a dev dependency: npm install) and TUS_TEST_AZURE_CONNECTION_STRING is not set'

/** How long an installed Azurite may take to listen before the tests fail. */
const START_TIMEOUT = 15_000

let started: Promise<string> | undefined
let connectionString: string | undefined

/**
 * The connection string of the storage the Azure tests use, or undefined after
 * marking the whole test file skipped (one visible line) when there is none:
 * TUS_TEST_AZURE_CONNECTION_STRING, else an Azurite started now (once per
 * process; stopped at the root test's teardown and at exit). Also sets
 * AZURE_STORAGE_CONNECTION_STRING, the plugin's default, which `fastify-tus
 * serve` processes the tests spawn inherit. Throws when Azurite is installed
 * but does not start within 15 s.
 */
export async function azuriteOrSkip (t: { plan(n: number, reason?: string): void }): Promise<string | undefined> {
  const given = process.env.TUS_TEST_AZURE_CONNECTION_STRING
  if (given !== undefined && given !== '') {
    connectionString = given
  } else if (started === undefined && !azuriteInstalled()) {
    t.plan(0, AZURITE_SKIP_REASON)
    return undefined
  } else {
    started ??= (async () => {
      const azurite = await startAzurite({ timeout: START_TIMEOUT })
      // Registered before any container a test makes, so it runs after their teardowns (last registered, first run).
      const { default: root } = await import('tap')
      root.teardown(async () => azurite.stop())
      return azurite.connectionString
    })()
    connectionString = await started
  }
  process.env.AZURE_STORAGE_CONNECTION_STRING = connectionString
  return connectionString
}

function current (): string {
  if (connectionString === undefined) throw new Error('no Azure storage yet: call azuriteOrSkip(t) first')
  return connectionString
}

let service: BlobServiceClient | undefined
let serviceFor: string | undefined

/** A client of the storage azuriteOrSkip answered (the tests' own, not the server's). */
export function blobService (): BlobServiceClient {
  const cs = current()
  if (service === undefined || serviceFor !== cs) {
    service = BlobServiceClient.fromConnectionString(cs)
    serviceFor = cs
  }
  return service
}

/** A new container, removed with everything in it at teardown (register it before the servers that use it). */
export async function testContainer (t: Teardown): Promise<string> {
  const name = `tus-test-${process.pid}-${randomBytes(4).toString('hex')}`
  const container = blobService().getContainerClient(name)
  await container.create()
  t.teardown(async () => container.deleteIfExists().catch(() => {}))
  return name
}

/** The plugin's `azure` option for a test container: this storage's connection string, blocks of 5 MiB. */
export function azureOptions (container: string, more: Partial<TusAzureOptions> = {}): TusAzureOptions {
  return { container, connectionString: current(), blockSize: 5 << 20, ...more }
}

const isMissing = (err: unknown): boolean => (err as { statusCode?: number }).statusCode === 404

/**
 * What is under a prefix of the container, both sorted: `blobs`, the committed
 * blobs; `uncommitted`, the blobs that have only uncommitted blocks (listed
 * only with include=uncommittedblobs, not readable). Told apart by listing
 * with and then without the uncommitted ones; a blob in the first list only is
 * checked on its own (it may have been committed or deleted in between).
 */
export async function containerContents (container: string, prefix = ''): Promise<{ blobs: string[]; uncommitted: string[] }> {
  const client = blobService().getContainerClient(container)
  const all: string[] = []
  for await (const blob of client.listBlobsFlat({ prefix, includeUncommitedBlobs: true })) all.push(blob.name)
  const blobs = new Set<string>()
  for await (const blob of client.listBlobsFlat({ prefix })) blobs.add(blob.name)
  const uncommitted: string[] = []
  const candidates = all.filter((name) => !blobs.has(name))
  const check = async (name: string): Promise<void> => {
    const blob = client.getBlockBlobClient(name)
    if (await blob.exists()) { blobs.add(name); return }
    const list = await blob.getBlockList('uncommitted').catch((err: unknown) => { if (isMissing(err)) return undefined; throw err })
    if ((list?.uncommittedBlocks ?? []).length > 0) uncommitted.push(name)
  }
  // Eight at a time: a container under test may hold many unfinished uploads.
  const worker = async (): Promise<void> => { for (let name = candidates.shift(); name !== undefined; name = candidates.shift()) await check(name) }
  await Promise.all(Array.from({ length: 8 }, worker))
  return { blobs: [...blobs].sort(), uncommitted: uncommitted.sort() }
}

/** A committed blob's bytes, or null when there is none (a blob with only uncommitted blocks is none). */
export async function readBlob (container: string, name: string): Promise<Buffer | null> {
  try {
    const res = await blobService().getContainerClient(container).getBlockBlobClient(name).download()
    const chunks: Buffer[] = []
    for await (const chunk of res.readableStreamBody!) chunks.push(Buffer.from(chunk as Buffer))
    return Buffer.concat(chunks)
  } catch (err) {
    if (isMissing(err)) return null
    throw err
  }
}

/**
 * The uncommitted blocks of a blob, in the service's order: `name` is the
 * block id as the service gives it (base64; the plugin's decode to 16 hex
 * digits and a 6-digit part number); [] when there is no such blob.
 */
export async function uncommittedBlocks (container: string, name: string): Promise<Array<{ name: string; size: number }>> {
  try {
    const list = await blobService().getContainerClient(container).getBlockBlobClient(name).getBlockList('uncommitted')
    return (list.uncommittedBlocks ?? []).map((b) => ({ name: b.name, size: b.size }))
  } catch (err) {
    if (isMissing(err)) return []
    throw err
  }
}

/** Writes a committed blob straight into the container (not through the server). */
export async function putBlob (container: string, name: string, body: Buffer | string): Promise<void> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  await blobService().getContainerClient(container).getBlockBlobClient(name).upload(bytes, bytes.length)
}

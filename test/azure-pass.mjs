// The protocol tests of the server, run again on Azure Blob Storage (`npm test`
// runs this after the S3 pass): the same files as test/postgres-pass.mjs, with
// TUS_TEST_STORE=azure, so startServer() gives every server a blob-name prefix
// of its own in one container and the stored-bytes helpers read the container
// (test/helpers/store.ts). Once with SQLite, and once more with PostgreSQL
// (TUS_TEST_BACKEND=postgres) when TUS_TEST_POSTGRES_URL is set.
//
// The storage is TUS_TEST_AZURE_CONNECTION_STRING when set, else one Azurite
// (a dev dependency) started here for the whole pass and stopped at its end:
// the test processes get its connection string. The pass is skipped, with one
// line saying so, only when the azurite package is not installed; if Azurite
// is installed but does not start, the pass fails.
//
// One container is made for the whole pass (TUS_TEST_AZURE_CONTAINER, unless
// that is set already: then it is used and kept); at the end the pass says
// what the servers left in it (nothing, normally: each empties its prefix) and
// removes the container it made.
//
// Extra arguments go to tap (e.g. a --grep, or test files to run instead of
// the whole list).
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROTOCOL_TESTS } from './postgres-pass.mjs'
import { azuriteInstalled, startAzurite } from './helpers/azurite.mjs'

// Disk-only tests (fsync, a full disk, the file system itself: write-errors,
// crash-consistency) are not in the protocol list; should one be added there,
// it goes here too.
const DISK_ONLY = new Set([])
const AZURE_TESTS = PROTOCOL_TESTS.filter((file) => !DISK_ONLY.has(file))

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
let connectionString = process.env.TUS_TEST_AZURE_CONNECTION_STRING || undefined
if (connectionString === undefined && !azuriteInstalled()) {
  process.stdout.write('# Azure pass of the protocol tests skipped: the azurite package is not installed (npm install) and TUS_TEST_AZURE_CONNECTION_STRING is not set\n')
  process.exit(0)
}

const args = process.argv.slice(2)
const files = args.some((a) => a.endsWith('.ts')) ? [] : AZURE_TESTS
const runs = [{ label: 'SQLite + Azure', env: { TUS_TEST_BACKEND: 'sqlite' } }]
if (process.env.TUS_TEST_POSTGRES_URL) runs.push({ label: 'PostgreSQL + Azure', env: { TUS_TEST_BACKEND: 'postgres' } })
else process.stdout.write('# Azure pass on PostgreSQL skipped: TUS_TEST_POSTGRES_URL is not set\n')

let azurite
if (connectionString === undefined) {
  const started = Date.now()
  azurite = await startAzurite({ timeout: 15_000 })
  connectionString = azurite.connectionString
  process.stdout.write(`# Azure pass: Azurite listens on 127.0.0.1:${azurite.port} (started in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
}
const where = azurite === undefined ? 'the storage of TUS_TEST_AZURE_CONNECTION_STRING' : `Azurite at 127.0.0.1:${azurite.port}`

const { BlobServiceClient } = await import('@azure/storage-blob')
const service = BlobServiceClient.fromConnectionString(connectionString)
const containerName = process.env.TUS_TEST_AZURE_CONTAINER || `tus-pass-${process.pid}-${randomBytes(4).toString('hex')}`
const container = service.getContainerClient(containerName)
const made = containerName !== process.env.TUS_TEST_AZURE_CONTAINER
if (made) await container.create()

/** Says what the servers left in the container (committed blobs, blobs of only uncommitted blocks): nothing, normally. */
async function reportLeft () {
  const committed = new Set()
  for await (const blob of container.listBlobsFlat()) committed.add(blob.name)
  let uncommitted = 0
  for await (const blob of container.listBlobsFlat({ includeUncommitedBlobs: true })) if (!committed.has(blob.name)) uncommitted++
  if (committed.size > 0 || uncommitted > 0) {
    const some = [...committed].slice(0, 5).join(', ')
    process.stdout.write(`# Azure pass: ${committed.size} blobs${some === '' ? '' : ` (${some}${committed.size > 5 ? ', ...' : ''})`} and ${uncommitted} blobs of uncommitted blocks were left in ${containerName}\n`)
  } else {
    process.stdout.write(`# Azure pass: nothing was left in ${containerName}\n`)
  }
}

let failed = 0
const took = []
try {
  for (const run of runs) {
    process.stdout.write(`# Azure pass (${run.label}): ${files.length === 0 ? 'the given' : files.length} protocol test files on ${where}\n`)
    const started = Date.now()
    const result = spawnSync(join(root, 'node_modules', '.bin', 'tap'), [...files, ...args], {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        ...run.env,
        TUS_TEST_STORE: 'azure',
        TUS_TEST_AZURE_CONNECTION_STRING: connectionString,
        AZURE_STORAGE_CONNECTION_STRING: connectionString,
        TUS_TEST_AZURE_CONTAINER: containerName
      }
    })
    if (result.error !== undefined) throw result.error
    took.push(`${run.label} ${((Date.now() - started) / 1000).toFixed(1)} s${result.status === 0 ? '' : ' (failed)'}`)
    if (result.status !== 0) failed++
  }
  await reportLeft()
  if (made) await container.deleteIfExists()
} finally {
  await azurite?.stop()
}
process.stdout.write(`# Azure pass took: ${took.join(', ')}\n`)
process.exit(failed === 0 ? 0 : 1)

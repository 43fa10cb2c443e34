// fastify-tus (this repository's build) in Fastify with its Azure store: the
// bytes go to the container the runner created for this run (a finished upload
// is the block blob `<BENCH_AZURE_PREFIX><id>`), the metadata to a fresh SQLite
// file. Otherwise the plugin's defaults (the SDK's default pipeline; the plugin
// itself turns retries off for the requests whose body is a stream).
// Connection string and block size: see azureSettings() in common.js.
import { azureSettings, dbPath, serveOurs } from './common.js'

const azure = azureSettings()
await serveOurs('ours-azure', {
  db: dbPath(),
  azure: {
    container: azure.container,
    prefix: azure.prefix,
    blockSize: azure.blockSize,
    connectionString: azure.connectionString
  }
})

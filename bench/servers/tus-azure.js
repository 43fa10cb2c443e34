// @tus/server with @tus/azure-store, mounted in Fastify as tus-fastify.js mounts
// it (serveTus() in common.js). The store is given a ContainerClient for the
// container the runner created for this run (from BENCH_AZURE_CONNECTION_STRING,
// the SDK's default pipeline: retries, keep-alive); otherwise its defaults.
// How it stores, as @tus/azure-store 2.0.2 does (not how ours-azure and
// raw-azure do): an upload is an append blob `<id>`, created by the POST with
// the upload's state as blob metadata; each PATCH body is gathered whole in
// memory and then sent as one Append Block (so its RSS grows with the PATCH
// size, and Azure's limit on an append block, 100 MiB on current service
// versions, bounds a PATCH), followed by a Set Blob Metadata with the new
// offset. It does not use the block size (BENCH_AZURE_BLOCK_SIZE).
import { AzureStore } from '@tus/azure-store'
import { BlobServiceClient } from '@azure/storage-blob'
import { azureSettings, serveTus } from './common.js'

const azure = azureSettings()
const client = BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient(azure.container)
await serveTus('tus-azure', new AzureStore({ client }))

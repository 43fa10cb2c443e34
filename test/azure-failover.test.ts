/**
 * Instances that share only the database and the container: three
 * `fastify-tus serve --azure-container` instances on one PostgreSQL schema
 * (the connection string from AZURE_STORAGE_CONNECTION_STRING), each with an
 * empty upload directory of its own, behind a round-robin balancer; 24
 * tus-js-client uploads with the default retries; one instance SIGKILLed
 * mid-run. Every upload finishes byte-exact, read back from the container by
 * name, and nothing else stays outside the tails' prefix. The run itself is
 * shared with the S3 store (helpers/object-scenarios.ts).
 */
import t from 'tap'
import { postgresOrSkip } from './helpers/postgres.js'
import { azuriteOrSkip } from './helpers/azure.js'
import { failover } from './helpers/object-scenarios.js'
import { AZURE_STORAGE } from './helpers/object-storages.js'

const url = postgresOrSkip(t)
const connectionString = url === undefined ? undefined : await azuriteOrSkip(t)

if (url !== undefined && connectionString !== undefined) failover(t, AZURE_STORAGE, url, 24)

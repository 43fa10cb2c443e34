/**
 * Instances that share only the database and the bucket: three `fastify-tus
 * serve --s3-bucket` instances on one PostgreSQL schema, each with an empty
 * upload directory of its own, behind a round-robin balancer; 24 tus-js-client
 * uploads with the default retries; one instance SIGKILLed mid-run. Every
 * upload finishes byte-exact, read back from the bucket by key, and nothing
 * else stays in the bucket outside the tails' prefix. The run itself is shared
 * with the Azure store (helpers/object-scenarios.ts).
 */
import t from 'tap'
import { postgresOrSkip } from './helpers/postgres.js'
import { s3OrSkip } from './helpers/s3.js'
import { failover } from './helpers/object-scenarios.js'
import { S3_STORAGE } from './helpers/object-storages.js'

const url = postgresOrSkip(t)
const endpoint = url === undefined ? undefined : s3OrSkip(t)

if (url !== undefined && endpoint !== undefined) failover(t, S3_STORAGE, url, 24)

/**
 * SIGKILL during PATCH streams to an Azure-backed server (Azurite), at a
 * different moment in each trial: after a restart the offset never runs ahead
 * of the bytes sent, and the upload resumes from it to a blob that is
 * byte-exact in the container (so every byte before the offset was stored:
 * staged blocks and tails that the service had acknowledged). Blocks of 5 MiB,
 * offsets committed at every block. The trial itself is shared with the S3
 * store (helpers/object-scenarios.ts).
 */
import t from 'tap'
import { azuriteOrSkip } from './helpers/azure.js'
import { sigkillTrials } from './helpers/object-scenarios.js'
import { AZURE_STORAGE } from './helpers/object-storages.js'

const connectionString = await azuriteOrSkip(t)

if (connectionString !== undefined) sigkillTrials(t, AZURE_STORAGE, 12)

/**
 * SIGKILL during PATCH streams to an S3-backed server, at a different moment in
 * each trial: after a restart the offset never runs ahead of the bytes sent,
 * and the upload resumes from it to an object that is byte-exact in the bucket
 * (so every byte before the offset was stored by S3). Parts of 5 MiB, offsets
 * committed at every part. The trial itself is shared with the Azure store
 * (helpers/object-scenarios.ts).
 */
import t from 'tap'
import { s3OrSkip } from './helpers/s3.js'
import { sigkillTrials } from './helpers/object-scenarios.js'
import { S3_STORAGE } from './helpers/object-storages.js'

const endpoint = s3OrSkip(t)

if (endpoint !== undefined) sigkillTrials(t, S3_STORAGE, 12)

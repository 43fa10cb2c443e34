// Shared bits of the benchmark servers: where to store, how to announce, how to stop.
import process from 'node:process'

export function uploadDir () {
  const dir = process.env.BENCH_UPLOAD_DIR
  if (!dir) throw new Error('BENCH_UPLOAD_DIR is required')
  return dir
}

/** The runner waits for this exact line on stdout. */
export function announce (port, path = '/files/') {
  process.stdout.write(`listening at http://127.0.0.1:${port}${path}\n`)
}

/** A clean exit on SIGTERM/SIGINT, so --cpu-prof can write its profile. */
export function onStop (close) {
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    Promise.resolve()
      .then(close)
      .then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
    // Keep-alive sockets may hold server.close(); do not wait forever.
    setTimeout(() => process.exit(0), 3000).unref()
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

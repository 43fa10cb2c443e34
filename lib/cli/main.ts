#!/usr/bin/env node
/** The `fastify-tus` command. */
import { SERVE_HELP, UsageError, serve } from './serve.js'
import { upload } from './upload.js'

const HELP = `Usage: fastify-tus <command> [options]

Commands:
  serve     run a TUS upload server (fastify-tus serve --help)
  upload    upload a file to a TUS server, resumably (fastify-tus upload --help)
`

async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === 'serve') return serve(rest)
  if (command === 'upload') {
    // upload reports its own failures (one line) and chooses its exit status.
    process.exitCode = await upload(rest)
    return
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP)
    return
  }
  throw new UsageError(`unknown command "${command}"`)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const usage = err instanceof UsageError || (err as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS') === true
  // The plugin's own errors already start with the program's name.
  const message = String((err as Error).message ?? err).replace(/^fastify-tus: /, '')
  process.stderr.write(`fastify-tus: ${message}\n`)
  if (usage) process.stderr.write(`\n${SERVE_HELP}`)
  process.exit(usage ? 2 : 1)
})

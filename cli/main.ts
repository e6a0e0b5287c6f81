#!/usr/bin/env node
import { failAndExit } from './output.js'
import { buildProgram } from './program.js'

try {
  await buildProgram().parseAsync(process.argv)
} catch (err) {
  failAndExit(err)
}

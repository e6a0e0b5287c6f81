// Prints, as one JSON object, what `tessera <path> --help` prints for every command of the built CLI
// (groups included; key: the path joined by spaces, '' for tessera itself). One process walks the
// real commander tree and asks each command for its help the way --help does, instead of one
// process per command.
import { buildProgram } from '../../dist/cli/program.js'

const helps = {}
const visit = (command, path) => {
  let text = ''
  command.configureOutput({ writeOut: (s) => (text += s) })
  command.outputHelp()
  helps[path.join(' ')] = text
  for (const sub of command.commands) if (sub.name() !== 'help') visit(sub, [...path, sub.name()])
}
visit(buildProgram(), [])
process.stdout.write(JSON.stringify(helps))

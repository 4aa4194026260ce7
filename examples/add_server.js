// A mapflow worker in Node.js: it speaks mapflow's line protocol (README, "The line protocol")
// and serves the seed's add(x, y). examples/add_node.mf runs it with serve("node", ...).
//
// Requests come one JSON object a line on the descriptor MAPFLOW_REQUESTS_FD names; responses
// go back in the same order on MAPFLOW_RESPONSES_FD. Standard output and error are the task's
// logs; after each task the server writes MAPFLOW_MARK to both, so that mapflow can tell one
// task's output from the next one's.
'use strict';
const fs = require('fs');
const readline = require('readline');

const requests = Number(process.env.MAPFLOW_REQUESTS_FD);
const responses = Number(process.env.MAPFLOW_RESPONSES_FD);
const mark = process.env.MAPFLOW_MARK || '';

function send(message) {
  fs.writeSync(responses, JSON.stringify(message) + '\n');
}

function endOutput() {
  if (mark) {
    fs.writeSync(1, mark);
    fs.writeSync(2, mark);
  }
}

function typeName(v) {
  return v === null ? 'null' : typeof v;
}

function add({ x, y }) {
  if (typeof x !== 'number' || typeof y !== 'number') {
    throw new TypeError(`unsupported operand types for +: ${typeName(x)} and ${typeName(y)}`);
  }
  console.log(`adding ${x} and ${y} in node ${process.version}`);
  return x + y;
}

endOutput();
send({ ready: true, marks: mark !== '' });

const lines = readline.createInterface({ input: fs.createReadStream(null, { fd: requests }) });
lines.on('line', (line) => {
  const request = JSON.parse(line);
  let response;
  try {
    response = { index: request.index, result: add(request.params) };
  } catch (e) {
    response = { index: request.index, error: { type: e.name, message: e.message, traceback: e.stack } };
  }
  endOutput();
  send(response);
});
lines.on('close', () => process.exit(0));

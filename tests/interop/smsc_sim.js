// A tiny SMSC on the npm "smpp" package (server mode) for tests/interop/test_smpp_simulator.py.
//
//   node smsc_sim.js PORT SYSTEM_ID PASSWORD
//
// Accepts bind_transmitter/bind_transceiver with that password, acks each
// submit_sm with an id "sim-N", and writes one line per event on stdout:
//   LISTENING <port>
//   BIND <command> <system_id> <ok|refused>
//   SM <id> <dest> <esm_class> <data_coding> <registered_delivery> <short_message hex>
//   RECEIPT <id>            (a delivery receipt was sent to a transceiver)
//   UNBIND
// A line "receipt <id>" on stdin sends a delivery receipt for that id to
// every bound transceiver.  The process exits when stdin closes.
'use strict';
const smpp = require('smpp');

const port = parseInt(process.argv[2], 10);
const systemId = process.argv[3];
const password = process.argv[4];
let next = 0;
const transceivers = new Set();

// keep the raw short_message: the package decodes it by data_coding
const filter = smpp.PDU.prototype._filter;
smpp.PDU.prototype._filter = function (func) {
  if (func === 'decode' && Buffer.isBuffer(this.short_message)) {
    this.rawShortMessage = Buffer.from(this.short_message);
  }
  return filter.call(this, func);
};

function say(line) { process.stdout.write(line + '\n'); }

const server = smpp.createServer(function (session) {
  session.on('error', function () { session.destroy(); });
  function bind(pdu) {
    const ok = pdu.system_id === systemId && pdu.password === password;
    say('BIND ' + pdu.command + ' ' + pdu.system_id + ' ' + (ok ? 'ok' : 'refused'));
    if (!ok) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    session.send(pdu.response({ system_id: 'sim' }));
    if (pdu.command === 'bind_transceiver') {
      transceivers.add(session);
      session.on('close', function () { transceivers.delete(session); });
    }
  }
  session.on('bind_transmitter', bind);
  session.on('bind_transceiver', bind);
  session.on('submit_sm', function (pdu) {
    next += 1;
    const id = 'sim-' + next;
    const sm = pdu.rawShortMessage || Buffer.alloc(0);
    say(['SM', id, pdu.destination_addr, pdu.esm_class, pdu.data_coding,
         pdu.registered_delivery, sm.toString('hex')].join(' '));
    session.send(pdu.response({ message_id: id }));
  });
  session.on('enquire_link', function (pdu) { session.send(pdu.response()); });
  session.on('unbind', function (pdu) {
    say('UNBIND');
    session.send(pdu.response());
    session.close();
  });
});

server.on('error', function (e) { say('ERROR ' + e.message); process.exit(2); });
server.listen(port, '127.0.0.1', function () { say('LISTENING ' + server.address().port); });

let input = '';
process.stdin.on('data', function (chunk) {
  input += chunk.toString();
  let nl;
  while ((nl = input.indexOf('\n')) >= 0) {
    const words = input.slice(0, nl).trim().split(/\s+/);
    input = input.slice(nl + 1);
    if (words[0] === 'receipt') {
      const text = 'id:' + words[1] + ' sub:001 dlvrd:001 submit date:2401010000 ' +
                   'done date:2401010001 stat:DELIVRD err:000 text:';
      transceivers.forEach(function (s) {
        s.deliver_sm({ source_addr: '447700900123', destination_addr: '447700900001',
                       esm_class: 0x04, short_message: Buffer.from(text) });
      });
      say('RECEIPT ' + words[1]);
    }
  }
});
process.stdin.on('end', function () { process.exit(0); });

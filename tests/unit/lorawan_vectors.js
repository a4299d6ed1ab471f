#!/usr/bin/env node
// Independent LoRaWAN 1.0 data-up vectors for tests/unit/test_lorawan.c, made
// by the npm package lora-packet (not our code). One JSON object per line:
//   {"id","nwk_s_key","app_s_key","dev_addr","fcnt","confirmed","fctrl","fopts","fport","plain","phy"}
// fcnt is the full 32-bit counter (the frame carries its low 16 bits), fport
// is null when the frame has no FPort, fctrl holds the flag bits only (lora-packet
// adds FOptsLen). The last line is {"count": N} so the reader can tell a
// complete run from a cut one. Deterministic: a fixed-seed PRNG.
"use strict";

let lora;
try {
    lora = require("lora-packet");
} catch (e) {
    process.stderr.write(
        "lorawan_vectors.js: npm package lora-packet not installed: run " +
            "`npm ci --prefix tests/unit` (scripts/test does it)\n"
    );
    process.exit(2);
}

// mulberry32: small, seeded, the same on every node version.
let seed = 0x1badb002;
function rand32() {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
}
function randInt(n) {
    return rand32() % n;
}
function randBytes(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
        b[i] = randInt(256);
    }
    return b;
}

const FIXED_ADDRS = ["00000000", "ffffffff", "26011bda", "01020304", "49be7df1", "80000001"];
const FIXED_FCNTS = [
    0, 1, 2, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x10001, 0x1ffff, 0x20001,
    0x12345678, 0x7fffffff, 0x80000000, 0xfffeffff, 0xffff0000, 0xfffffffe, 0xffffffff,
];
const FCTRL_FLAGS = [0x00, 0x80, 0x40, 0x20, 0x10, 0xf0, 0xa0];

function makeCase(id, o) {
    const nwk = o.nwk || randBytes(16);
    const app = o.app || randBytes(16);
    const devAddr = Buffer.from(o.devAddr, "hex");
    const fcnt = o.fcnt >>> 0;
    // lora-packet takes the high 16 bits of the counter separately, in frame (LE) order.
    const msb = Buffer.from([(fcnt >>> 16) & 0xff, (fcnt >>> 24) & 0xff]);
    const fctrl = o.fctrl;
    const fields = {
        MType: o.confirmed ? "Confirmed Data Up" : "Unconfirmed Data Up",
        DevAddr: devAddr,
        FCtrl: {
            ADR: (fctrl & 0x80) !== 0,
            ADRACKReq: (fctrl & 0x40) !== 0,
            ACK: (fctrl & 0x20) !== 0,
            FPending: (fctrl & 0x10) !== 0,
        },
        FCnt: fcnt & 0xffff,
        FOpts: o.fopts,
        payload: o.plain,
    };
    if (o.fport !== null) {
        fields.FPort = o.fport;
    }
    const pkt = lora.fromFields(fields, app, nwk, undefined, msb);
    let phy = pkt.getPHYPayload();
    if (o.fport === null) {
        // lora-packet signs only frames with an FPort; sign this one with its MIC function.
        const mic = lora.calculateMIC(pkt, nwk, undefined, msb);
        phy = Buffer.concat([phy.subarray(0, phy.length - 4), mic]);
    }
    // Self-check with lora-packet's own decoder, so a misuse of its API shows here.
    const back = lora.fromWire(phy);
    if (!lora.verifyMIC(back, nwk, undefined, msb)) {
        throw new Error(`case ${id}: lora-packet does not verify its own MIC`);
    }
    if (back.getFCnt() !== (fcnt & 0xffff) || phy.length !== 12 + o.fopts.length +
        (o.fport === null ? 0 : 1 + o.plain.length)) {
        throw new Error(`case ${id}: unexpected frame ${phy.toString("hex")}`);
    }
    return {
        id: id,
        nwk_s_key: nwk.toString("hex"),
        app_s_key: app.toString("hex"),
        dev_addr: o.devAddr.toUpperCase(),
        fcnt: fcnt,
        confirmed: !!o.confirmed,
        fctrl: fctrl,
        fopts: o.fopts.toString("hex"),
        fport: o.fport,
        plain: o.plain.toString("hex"),
        phy: phy.toString("hex"),
    };
}

const cases = [];
let n = 0;
function add(o) {
    cases.push(makeCase(`lp${n++}`, o));
}

// Every payload length 0..222 once, with a port cycling through 1..255 and 0.
for (let len = 0; len <= 222; len++) {
    const fport = len % 17 === 0 ? 0 : 1 + (len * 37) % 255;
    add({
        devAddr: FIXED_ADDRS[len % FIXED_ADDRS.length],
        fcnt: FIXED_FCNTS[len % FIXED_FCNTS.length],
        confirmed: len % 3 === 0,
        fctrl: FCTRL_FLAGS[len % FCTRL_FLAGS.length],
        fopts: fport === 0 ? Buffer.alloc(0) : randBytes(len % 16),
        fport: fport,
        plain: randBytes(len),
    });
}
// Every FCnt edge with both keys in play (port 0 and port > 0).
for (const fcnt of FIXED_FCNTS) {
    for (const fport of [0, 1, 223, 255]) {
        add({
            devAddr: rand32().toString(16).padStart(8, "0"),
            fcnt: fcnt,
            confirmed: fport === 223,
            fctrl: 0,
            fopts: Buffer.alloc(0),
            fport: fport,
            plain: randBytes(1 + randInt(51)),
        });
    }
}
// No FPort at all: FOpts only (every FOptsLen) and the empty frame.
for (let olen = 0; olen <= 15; olen++) {
    add({
        devAddr: rand32().toString(16).padStart(8, "0"),
        fcnt: rand32(),
        confirmed: olen % 2 === 1,
        fctrl: FCTRL_FLAGS[olen % FCTRL_FLAGS.length],
        fopts: randBytes(olen),
        fport: null,
        plain: Buffer.alloc(0),
    });
}
// Random mix: many DevAddrs and 32-bit counters, FOpts with payload.
for (let i = 0; i < 200; i++) {
    const fport = randInt(8) === 0 ? 0 : 1 + randInt(255);
    add({
        devAddr: rand32().toString(16).padStart(8, "0"),
        fcnt: randInt(4) === 0 ? randInt(0x10000) : rand32(),
        confirmed: randInt(2) === 1,
        fctrl: randInt(16) << 4,
        fopts: fport === 0 ? Buffer.alloc(0) : randBytes(randInt(16)),
        fport: fport,
        plain: randBytes(randInt(223)),
    });
}

const out = cases.map((c) => JSON.stringify(c));
out.push(JSON.stringify({ count: cases.length }));
process.stdout.write(out.join("\n") + "\n");

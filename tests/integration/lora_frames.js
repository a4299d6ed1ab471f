#!/usr/bin/env node
// LoRaWAN 1.0 data-up PHYPayloads for tests/integration/test_lora.py, made by
// the npm package lora-packet: an encoder independent of our C code, so a
// frame the gateway accepts proves it agrees with someone else's LoRaWAN.
//
// stdin: a JSON array of
//   {"dev_addr": "26011BDA", "nwk_s_key": "<32 hex>", "app_s_key": "<32 hex>",
//    "fcnt": <full 32-bit counter; the frame carries its low 16 bits>,
//    "fport": 1, "payload": "<hex, plain>", "confirmed": false}
// stdout: a JSON array of the PHYPayloads as hex, in the same order.
"use strict";

const path = require("path");

let lora;
for (const where of ["lora-packet", path.join(__dirname, "../unit/node_modules/lora-packet")]) {
    try {
        lora = require(where);
        break;
    } catch (e) {
        if (e.code !== "MODULE_NOT_FOUND") {
            throw e;
        }
    }
}
if (!lora) {
    process.stderr.write(
        "lora_frames.js: npm package lora-packet not installed: run " +
            "`npm ci --prefix tests/unit` (scripts/test does it)\n"
    );
    process.exit(2);
}

function hexBuf(hex, len, what) {
    if (typeof hex !== "string" || !/^([0-9a-fA-F]{2})*$/.test(hex) ||
        (len !== undefined && hex.length !== 2 * len)) {
        throw new Error(`${what}: ${JSON.stringify(hex)} is not ${len === undefined ? "" : len + " bytes of "}hex`);
    }
    return Buffer.from(hex, "hex");
}

function build(spec, i) {
    const what = `frame ${i}`;
    const nwk = hexBuf(spec.nwk_s_key, 16, `${what} nwk_s_key`);
    const app = hexBuf(spec.app_s_key, 16, `${what} app_s_key`);
    const devAddr = hexBuf(spec.dev_addr, 4, `${what} dev_addr`);
    const payload = hexBuf(spec.payload || "", undefined, `${what} payload`);
    const fcnt = spec.fcnt >>> 0;
    if (fcnt !== spec.fcnt) {
        throw new Error(`${what}: fcnt ${spec.fcnt} is not a 32-bit counter`);
    }
    const fport = spec.fport === undefined ? 1 : spec.fport;
    // lora-packet takes the high 16 bits of the counter separately, in frame (LE) order.
    const msb = Buffer.from([(fcnt >>> 16) & 0xff, (fcnt >>> 24) & 0xff]);
    const pkt = lora.fromFields(
        {
            MType: spec.confirmed ? "Confirmed Data Up" : "Unconfirmed Data Up",
            DevAddr: devAddr,
            FCtrl: { ADR: false, ADRACKReq: false, ACK: false, FPending: false },
            FCnt: fcnt & 0xffff,
            FPort: fport,
            payload: payload,
        },
        app,
        nwk,
        undefined,
        msb
    );
    const phy = pkt.getPHYPayload();
    // Check our use of lora-packet with its own decoder.
    const back = lora.fromWire(phy);
    if (!lora.verifyMIC(back, nwk, undefined, msb)) {
        throw new Error(`${what}: lora-packet does not verify its own MIC`);
    }
    const plain = lora.decrypt(back, app, nwk, msb);
    if (back.getFCnt() !== (fcnt & 0xffff) || !plain.equals(payload)) {
        throw new Error(`${what}: lora-packet does not read back its frame ${phy.toString("hex")}`);
    }
    return phy.toString("hex");
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
    try {
        const specs = JSON.parse(input);
        if (!Array.isArray(specs)) {
            throw new Error("stdin: expected a JSON array of frame specs");
        }
        process.stdout.write(JSON.stringify(specs.map(build)) + "\n");
    } catch (e) {
        process.stderr.write(`lora_frames.js: ${e.message}\n`);
        process.exit(1);
    }
});

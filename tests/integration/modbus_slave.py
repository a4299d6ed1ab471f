#!/usr/bin/python3
"""A Modbus slave for the integration tests, on pymodbus 3.0.

    modbus_slave.py --tcp 127.0.0.1:PORT  --spec SPEC
    modbus_slave.py --rtu /path/to/pty --baud 9600 --spec SPEC

SPEC is JSON (inline, or @file): {"UNIT": {"holding": {...}, "input": {...},
"coils": {...}, "discrete": {...}}, ...}; each table is {"ADDR": VALUE} or a
list from address 0. Every table holds `size` (default 128) addresses, all 0
unless given. Addresses are 0-based as on the wire (zero_mode).

Commands on stdin, one per line; each is answered on stdout with
"done N" (N counts commands from 1) or "error N: text":
    set UNIT TABLE ADDR VALUE [VALUE ...]   write words (or 0/1 bits)
    silent UNIT         the unit stops answering (as a dead RS-485 drop)
    answer UNIT         it answers again
    exception UNIT      every read gets exception 2 (illegal data address)
    normal UNIT         no more exceptions
    requests UNIT       prints "requests UNIT [[fc, addr, count], ...]" (reads so far)
Prints "ready" once it is listening. An unknown unit id gets no answer
(pymodbus drops it), which is what a missing RS-485 device does.
"""

import argparse
import asyncio
import json
import sys
import threading

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

TABLES = {"holding": "h", "input": "i", "coils": "c", "discrete": "d"}
FC_TABLE = {1: "c", 2: "d", 3: "h", 4: "i"}


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Unit(ModbusSlaveContext):
    """One device: its tables, a log of the reads it got, and an exception switch."""

    def __init__(self, unit_id, spec, size):
        blocks = {}
        for name, key in TABLES.items():
            values = [0] * size
            given = spec.get(name, {})
            items = enumerate(given) if isinstance(given, list) else \
                ((int(a), v) for a, v in given.items())
            for addr, v in items:
                values[addr] = int(v)
            blocks[{"h": "hr", "i": "ir", "c": "co", "d": "di"}[key]] = \
                ModbusSequentialDataBlock(0, values)
        super().__init__(zero_mode=True, **blocks)
        self.unit_id = unit_id
        self.reads = []
        self.raise_exception = False

    def validate(self, fc_as_hex, address, count=1):
        if fc_as_hex in FC_TABLE:
            self.reads.append([fc_as_hex, address, count])
            if self.raise_exception:
                return False  # pymodbus answers exception 2, illegal data address
        return super().validate(fc_as_hex, address, count)


class Slave:
    def __init__(self, spec, size):
        self.units = {int(u): Unit(int(u), s, size) for u, s in spec.items()}
        self.context = ModbusServerContext(slaves=dict(self.units), single=False)
        self.ncommands = 0

    def command(self, line):
        """Runs on the event loop thread, so requests never see half a change."""
        self.ncommands += 1
        n = self.ncommands
        try:
            words = line.split()
            op, unit = words[0], int(words[1])
            dev = self.units[unit]
            if op == "set":
                table = TABLES[words[2]]
                addr = int(words[3])
                values = [int(v, 0) for v in words[4:]]
                if not values:
                    raise ValueError("set needs a value")
                dev.store[table].setValues(addr, values)
            elif op == "silent":
                if unit in self.context:
                    del self.context[unit]
            elif op == "answer":
                self.context[unit] = dev
            elif op == "exception":
                dev.raise_exception = True
            elif op == "normal":
                dev.raise_exception = False
            elif op == "requests":
                out(f"requests {unit} {json.dumps(dev.reads)}")
            else:
                raise ValueError(f"unknown command {op!r}")
            out(f"done {n}")
        except (IndexError, KeyError, ValueError) as e:
            out(f"error {n}: {e!r}")


def read_stdin(loop, slave, stopped):
    for line in sys.stdin:
        if line.strip():
            loop.call_soon_threadsafe(slave.command, line.strip())
    loop.call_soon_threadsafe(stopped.set)  # stdin closed: the test is gone


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", help="HOST:PORT")
    ap.add_argument("--rtu", help="serial device")
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--spec", required=True, help="JSON, or @file")
    args = ap.parse_args()
    text = open(args.spec[1:]).read() if args.spec.startswith("@") else args.spec
    slave = Slave(json.loads(text), args.size)

    loop = asyncio.get_running_loop()
    if args.tcp:
        host, port = args.tcp.rsplit(":", 1)
        server = ModbusTcpServer(slave.context, framer=ModbusSocketFramer,
                                 address=(host, int(port)), allow_reuse_address=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
    else:
        server = ModbusSerialServer(slave.context, framer=ModbusRtuFramer, port=args.rtu,
                                    baudrate=args.baud, bytesize=8, parity="N", stopbits=1)
        await server.start()
        task = None
    stopped = asyncio.Event()
    threading.Thread(target=read_stdin, args=(loop, slave, stopped), daemon=True).start()
    out("ready")
    await stopped.wait()
    if task:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())

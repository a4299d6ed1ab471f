// A TTN v3 payload decoder of the kind vendors ship, for scripts/bench/lora (js codec).
// Payload: byte 0 bit 0 smoke, byte 1 battery %, bytes 2-3 temperature in 0.1 C
// (signed, big-endian): the same frame the layout profile of the benchmark reads.
function decodeUplink(input) {
  var bytes = input.bytes;
  if (input.fPort !== 1) {
    return { errors: ["unknown fPort " + input.fPort] };
  }
  if (bytes.length < 4) {
    return { errors: ["payload too short: " + bytes.length + " bytes, want 4"] };
  }
  var raw = (bytes[2] << 8) | bytes[3];
  if (raw & 0x8000) {
    raw -= 0x10000;
  }
  var warnings = [];
  if (bytes[1] < 20) {
    warnings.push("battery low");
  }
  return {
    data: {
      smoke: (bytes[0] & 0x01) === 1,
      battery: bytes[1],
      temperature: raw / 10
    },
    warnings: warnings
  };
}

// A vendor's TTN v3 decoder: temperature (s16be, 0.01 C), humidity (u8, 0.5 %), battery (u16be mV).
function decodeUplink(input) {
  var b = input.bytes;
  if (b.length < 5) {
    return { errors: ["payload too short"], warnings: [] };
  }
  var t = (b[0] << 8) | b[1];
  if (t > 0x7fff) {
    t -= 0x10000;
  }
  return {
    data: { temperature: t / 100, humidity: b[2] / 2, battery: ((b[3] << 8) | b[4]) / 1000 },
    warnings: [],
    errors: []
  };
}

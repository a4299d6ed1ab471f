// Throws on purpose for byte 0xFF (line 5) and throws a bare string for 0xFE.
function decodeUplink(input) {
  var b = input.bytes;
  if (b[0] === 0xff) {
    throw new Error("unsupported frame type");
  }
  if (b[0] === 0xfe) {
    throw "bare string";
  }
  return { data: { v: b[0] } };
}

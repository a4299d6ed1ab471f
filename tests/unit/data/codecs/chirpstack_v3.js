// ChirpStack v3 codec: Decode(fPort, bytes, variables) returns the object itself.
function Decode(fPort, bytes, variables) {
  var out = {};
  if (fPort === 2) {
    out.pressure = ((bytes[0] << 8) | bytes[1]) / 10000;
    out.door = bytes[2] ? "open" : "closed";
  } else {
    out.unknown_port = fPort;
  }
  out.vars = typeof variables;
  return out;
}

// ChirpStack v3 form: Decode(fPort, bytes, variables).
function Decode(fPort, bytes, variables) {
  return { level: bytes[0], port: fPort };
}

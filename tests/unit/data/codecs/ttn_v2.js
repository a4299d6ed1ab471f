function Decoder(bytes, port) {
  return { first: bytes[0], port: port };
}

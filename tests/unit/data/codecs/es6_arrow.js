function decodeUplink(input) {
  var f = input.bytes.map((x) => x * 2);
  return { data: { f: f[0] } };
}

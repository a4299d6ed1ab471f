function decodeUplink(input) {
  var a = 1;
  var s = `v=${a}`;
  return { data: { s: s } };
}

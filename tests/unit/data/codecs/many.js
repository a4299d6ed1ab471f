function decodeUplink(input) {
  var d = {};
  for (var i = 0; i < 20; i++) {
    d["v" + i] = i;
  }
  return { data: d };
}

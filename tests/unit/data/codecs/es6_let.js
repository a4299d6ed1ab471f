function decodeUplink(input) {
  var a = 1;
  let b = 2;
  return { data: { a: a, b: b } };
}

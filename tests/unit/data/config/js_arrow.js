// ES6: an arrow function, which Duktape (ES5.1) refuses.
function decodeUplink(input) {
  var f = input.bytes.map((x) => x * 2);
  return { data: { f: f[0] } };
}

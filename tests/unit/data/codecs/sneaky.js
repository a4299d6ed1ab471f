// The result and the thrown value run code of their own when the gateway reads them.
function decodeUplink(input) {
  var k = input.bytes[0];
  if (k === 1) {
    return { data: { a: 1, get b() { while (true) {} } } };
  }
  if (k === 2) {
    throw { toString: function () { while (true) {} } };
  }
  if (k === 3) {
    return { data: { a: 1, get b() { throw new Error("getter failed"); } } };
  }
  return { data: { ok: k } };
}

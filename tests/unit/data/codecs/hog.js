// Frame type 1: the classic hog; 3: strings doubling until memory runs out.
function decodeUplink(input) {
  var a = [];
  if (input.bytes[0] === 1) {
    while (true) {
      a.push(new Array(1e6));
    }
  }
  if (input.bytes[0] === 3) {
    var s = "x";
    while (true) {
      s = s + s;
      a.push(s);
    }
  }
  return { data: { v: input.bytes[0] } };
}

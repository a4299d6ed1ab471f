// Loops forever for frame type 1; decodes normally otherwise.
function decodeUplink(input) {
  var n = 0;
  if (input.bytes[0] === 1) {
    while (true) {
      n++;
    }
  }
  return { data: { v: input.bytes[0] } };
}

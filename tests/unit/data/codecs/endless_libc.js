// Loops forever mostly inside libc/libm (local time, maths, allocation): the
// time limit must stop it without leaving a libc lock held.
function decodeUplink(input) {
  var x = 0;
  if (input.bytes[0] === 1) {
    while (true) {
      x += new Date(x).getHours() + Math.sin(x) + Math.pow(x, 0.5);
      x += String(x).length + JSON.stringify({ a: [x, x] }).length;
    }
  }
  return { data: { hour_ok: new Date(0).getHours() >= 0 } };
}

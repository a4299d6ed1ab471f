var ready = false;
while (!ready) {
}
function decodeUplink(input) {
  return { data: {} };
}

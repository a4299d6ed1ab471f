



class Frame {}
function decodeUplink(input) {
  return { data: {} };
}

// No decodeUplink, Decode or Decoder here.
function helper(x) {
  return x;
}

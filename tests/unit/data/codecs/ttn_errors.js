function decodeUplink(input) {
  return { data: { v: 1 }, errors: ["bad length", "unknown port " + input.fPort] };
}

function decodeUplink(input) {
  return { data: { bom: 1 } };
}

function decodeUplink(input) {
  var a = 1;

  if (a {
    return { data: {} };
  }
}

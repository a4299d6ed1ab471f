// const looks harmless but Duktape makes it a var
function decodeUplink(input) {

  const k = 3;
  return { data: { k: k } };
}

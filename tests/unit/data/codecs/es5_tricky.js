// const and let in comments, strings and regular expressions are not ES6: class => `x`
/* let x = 1; const y = 2; class A {} (a) => a */
var obj = { let: 1, const: 2, "class": 3 };
var s = "let x = 1; const y = `t` => ...";
var r = /const x => `y`/g;
var d = 10 / 2 / 5;
function decodeUplink(input) {
  var letter = obj.let + obj.const;
  return { data: { n: letter + d, m: r.test("const x => `y`") ? 1 : 0, s: s.length > 0 } };
}

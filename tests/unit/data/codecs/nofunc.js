// no decoder function here
function helper(x) {
  return x;
}

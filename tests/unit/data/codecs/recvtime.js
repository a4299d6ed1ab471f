function decodeUplink(input) {
  return { data: { ms: input.recvTime.getTime(), iso: input.recvTime.toISOString().slice(0, 19),
                   vars: typeof input.variables } };
}
